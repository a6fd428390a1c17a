#include <gtest/gtest.h>
#include <cerrno>

#include "coffer/util/error.hpp"

using namespace coffer;

TEST(Error, MessageNamesOperationSubjectAndErrno) {
  try {
    throw_errno("open", std::filesystem::path("/srv/vault.img"), ENOENT, ErrorKind::missing);
    FAIL() << "no throw";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "open /srv/vault.img: No such file or directory");
    EXPECT_EQ(e.kind(), ErrorKind::missing);
    EXPECT_EQ(e.code().value(), ENOENT);
    EXPECT_EQ(e.subject(), "/srv/vault.img");
  }
}

TEST(Error, ReasonAndCodeBothShown) {
  Error e(ErrorKind::failed, "unlock", "vault.img", "no key slot opens",
          std::error_code(EPERM, std::generic_category()));
  EXPECT_STREQ(e.what(), "unlock vault.img: no key slot opens: Operation not permitted");
}

TEST(Error, FailWithoutSubject) {
  try {
    fail(ErrorKind::usage, "parse", "", "bad value");
    FAIL();
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "parse: bad value");
    EXPECT_EQ(e.kind(), ErrorKind::usage);
  }
}
