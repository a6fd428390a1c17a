// A hostile or broken sender for B: speaks just enough of the transfer protocol
// (docs/formats/protocol.md) to be started as `coffer backup SRC REPO --remote-command
// "fake_agent MODE [MARKER]"` (coffer appends "agent"), then claims what a real agent never
// would. Modes:
//   huge-file   lists a 2^60-byte file and answers a request for it with FILE_END of that size
//   far-offset  lists a 10-byte file and sends its data at offset 2^62
//   big-end     lists a 10-byte file and ends it with a size of 2^60
//   dense-gap   lists a 1 TiB file without holes and ends it at 1 TiB without sending data
//   delta-bomb  lists a 1000-byte file; answers a delta request with librsync COPY commands
//               that would expand to 51 MB
//   silent      answers the handshake, then says nothing (MARKER is created once it is silent)
// Written by hand, without the project's encoder, so that it can send what the encoder cannot.
#include <fcntl.h>
#include <unistd.h>
#include <cstdint>
#include <cstdio>
#include <string>

namespace {

void put_uvar(std::string& out, std::uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

void send(std::uint8_t type, const std::string& payload) {
  std::string f(1, static_cast<char>(type));
  for (int i = 0; i < 4; ++i) f.push_back(static_cast<char>((payload.size() >> (8 * i)) & 0xff));
  f += payload;
  for (std::size_t done = 0; done < f.size();) {
    ssize_t n = ::write(1, f.data() + done, f.size() - done);
    if (n <= 0) ::_exit(0);  // B went away
    done += static_cast<std::size_t>(n);
  }
}

bool read_exact(char* buf, std::size_t n) {
  for (std::size_t done = 0; done < n;) {
    ssize_t r = ::read(0, buf + done, n - done);
    if (r <= 0) return false;
    done += static_cast<std::size_t>(r);
  }
  return true;
}

// The next frame's type (its payload is read and dropped); -1 at the end of the stream.
int receive() {
  unsigned char h[5];
  if (!read_exact(reinterpret_cast<char*>(h), 5)) return -1;
  std::size_t len = h[1] | h[2] << 8 | h[3] << 16 | static_cast<std::size_t>(h[4]) << 24;
  std::string payload(len, '\0');
  if (!read_exact(payload.data(), len)) return -1;
  return h[0];
}

// LIST with the root directory and one regular file "f" of `size` bytes; LIST_END.
void send_list(std::uint64_t size) {
  std::string l;
  l.push_back(0);  // flags
  put_uvar(l, 0);  // prefix
  put_uvar(l, 0);  // path "" (the root)
  put_uvar(l, 040755);
  put_uvar(l, 0);           // uid
  put_uvar(l, 0);           // gid
  put_uvar(l, 3400000000);  // mtime: svar of 1700000000
  put_uvar(l, 0);
  l.push_back(0x02 | 0x04 | 0x40);  // same uid, gid and seconds; the mode follows
  put_uvar(l, 0);                   // prefix
  put_uvar(l, 1);
  l.push_back('f');
  put_uvar(l, 0100644);
  put_uvar(l, 0);  // nanoseconds
  put_uvar(l, size);
  send(10, l);
  std::string end;
  put_uvar(end, 2);
  send(11, end);
}

}  // namespace

int main(int argc, char** argv) {
  std::string mode = argc > 1 ? argv[1] : "";
  if (receive() != 1) return 1;  // HELLO
  std::string ok = "coffer-xfer";
  put_uvar(ok, 1);
  send(2, ok);
  if (mode == "silent") {
    if (argc > 2) ::close(::open(argv[2], O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
    while (receive() >= 0) {
    }
    return 0;
  }
  std::uint64_t listed = 10;
  if (mode == "huge-file") listed = std::uint64_t{1} << 60;
  if (mode == "dense-gap") listed = std::uint64_t{1} << 40;
  if (mode == "delta-bomb") listed = 1000;
  send_list(listed);
  for (;;) {
    int type = receive();
    if (type < 0 || type == 40) return 0;  // end of stream, SUMMARY
    if (type == 24) {                      // FINISH: DONE
      std::string done;
      put_uvar(done, 0);
      put_uvar(done, 0);
      send(34, done);
      continue;
    }
    if (type != 20 && type != 21) continue;  // only REQUEST_DATA / REQUEST_DELTA need an answer
    std::string begin;
    put_uvar(begin, 1);
    begin.push_back(type == 20 ? 'D' : 'd');
    send(30, begin);
    if (mode == "delta-bomb" && type == 21) {
      // RS_DELTA_MAGIC, then RS_OP_COPY_N1_N4 (0x47): position 0, length 512, many times over.
      std::string delta("\x72\x73\x02\x36", 4);
      for (int i = 0; i < 100000; ++i) delta += std::string("\x47\x00\x00\x00\x02\x00", 6);
      send(32, delta);
    }
    if (mode == "far-offset") {
      std::string data;
      put_uvar(data, std::uint64_t{1} << 62);
      data += "x";
      send(31, data);
    }
    std::string end;
    put_uvar(end, 1);
    end.push_back(0);
    // The listed size, except where the size itself is the lie.
    put_uvar(end, mode == "big-end" || mode == "huge-file" ? std::uint64_t{1} << 60 : listed);
    send(33, end);
  }
}
