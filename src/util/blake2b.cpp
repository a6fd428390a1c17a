#include "coffer/util/blake2b.hpp"

#include <openssl/evp.h>
#include <memory>

#include "coffer/util/error.hpp"

namespace coffer {
namespace {

struct FreeContext {
  void operator()(EVP_MD_CTX* c) const noexcept { EVP_MD_CTX_free(c); }
};

// One context per thread, reused: hashing runs on every core at once.
EVP_MD_CTX* thread_context() {
  thread_local std::unique_ptr<EVP_MD_CTX, FreeContext> ctx(EVP_MD_CTX_new());
  if (!ctx)
    fail(ErrorKind::failed, "hash", "BLAKE2b-512", "out of memory for an OpenSSL digest context");
  return ctx.get();
}

}  // namespace

void blake2b512(std::span<const std::byte> data, std::span<std::byte, 64> out) {
  EVP_MD_CTX* ctx = thread_context();
  unsigned int len = 0;
  if (EVP_DigestInit_ex2(ctx, EVP_blake2b512(), nullptr) != 1 ||
      EVP_DigestUpdate(ctx, data.data(), data.size()) != 1 ||
      EVP_DigestFinal_ex(ctx, reinterpret_cast<unsigned char*>(out.data()), &len) != 1 ||
      len != out.size())
    fail(ErrorKind::failed, "hash", "BLAKE2b-512", "OpenSSL's digest failed");
}

}  // namespace coffer
