// Framing over a real pipe pair: frames in order, large bodies, ERROR frames raised as the error
// they carry, a closed peer, flow control; and the STATE message round trip.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <atomic>
#include <csignal>
#include <thread>

#include "protocol.hpp"

namespace coffer::replicate {
namespace {

struct Pipes {
  UniqueFd a_read, a_write, b_read, b_write;
  Pipes() {
    int p[2], q[2];
    EXPECT_EQ(::pipe(p), 0);
    EXPECT_EQ(::pipe(q), 0);
    a_read.reset(p[0]);
    b_write.reset(p[1]);
    b_read.reset(q[0]);
    a_write.reset(q[1]);
  }
};

TEST(Channel, FramesArriveInOrder) {
  Pipes p;
  FdStream a(std::move(p.a_read), std::move(p.a_write), "A"),
      b(std::move(p.b_read), std::move(p.b_write), "B");
  std::vector<std::byte> big(3 << 20);
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<std::byte>(i * 7);
  std::thread sender([&] {
    Channel ch(a);
    ch.send(Msg::keep, Encoder().u32(3).bytes);
    ch.send(Msg::record, Encoder().u8(1).bytes, big);
    ch.send(Msg::bye);
    ch.flush();
    a.close_write();
  });
  Channel ch(b);
  Frame f1 = ch.expect(Msg::keep);
  EXPECT_EQ(Decoder(f1.payload, "t").u32(), 3u);
  Frame f2 = ch.expect(Msg::record);
  ASSERT_EQ(f2.payload.size(), big.size() + 1);
  EXPECT_TRUE(std::equal(big.begin(), big.end(), f2.payload.begin() + 1));
  ch.expect(Msg::bye);
  EXPECT_FALSE(ch.receive(true)) << "end of stream where allowed";
  sender.join();
  EXPECT_GT(ch.bytes_received(), big.size());
}

TEST(Channel, ErrorFramesBecomeErrors) {
  Pipes p;
  FdStream a(std::move(p.a_read), std::move(p.a_write), "A"),
      b(std::move(p.b_read), std::move(p.b_write), "B");
  {
    Channel ch(a);
    ch.send_error(Error(ErrorKind::locked, "lock", "/srv/r/lock", "locked by pid 42"));
    a.close_write();
  }
  Channel ch(b);
  try {
    ch.receive();
    FAIL() << "no error raised";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::locked);
    EXPECT_STREQ(e.what(), "lock /srv/r/lock: locked by pid 42");
  }
  EXPECT_THROW(ch.receive(), Error) << "end of stream where not allowed";
}

TEST(Channel, RejectsAbsurdFrameLength) {
  Pipes p;
  FdStream a(std::move(p.a_read), std::move(p.a_write), "A"),
      b(std::move(p.b_read), std::move(p.b_write), "B");
  std::byte junk[5] = {std::byte{0xff}, std::byte{0xff}, std::byte{0xff}, std::byte{0xff},
                       std::byte{1}};
  a.write_all(junk);
  Channel ch(b);
  EXPECT_THROW(ch.receive(), Error);
}

// Protocol 2's flow control: with a window, the sender stops when that much is unacknowledged,
// even where the pipe could take far more; the receiver's ACKs let it go on, and a reply the
// receiver sends meanwhile is still delivered to the sender in order.
TEST(Channel, WindowBoundsBytesInFlight) {
  Pipes p;
  ASSERT_GE(::fcntl(p.b_write.get(), F_SETPIPE_SZ, 1 << 20), 1 << 20);
  const int a_in = p.a_read.get();
  FdStream a(std::move(p.a_read), std::move(p.a_write), "A"),
      b(std::move(p.b_read), std::move(p.b_write), "B");
  std::vector<std::byte> big(6 << 20);
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<std::byte>(i * 13);
  constexpr std::uint64_t kWindow = 256 << 10;  // a quarter of what the pipe holds
  std::atomic<bool> done{false};
  std::thread sender([&] {
    Channel ch(b);
    ch.limit_in_flight(kWindow);
    ch.send(Msg::record, Encoder().u8(1).bytes, big);
    ch.flush();
    ch.expect(Msg::ok);
    done = true;
  });
  int queued = 0;
  for (int i = 0; i < 50; ++i) {  // let the sender fill what it may
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    ASSERT_EQ(::ioctl(a_in, FIONREAD, &queued), 0);
  }
  EXPECT_LE(static_cast<std::uint64_t>(queued), kWindow) << "the sender ignored the window";
  EXPECT_GT(queued, 0);
  Channel ch(a);
  ch.send_acks(32 << 10);
  ch.send(Msg::ok);
  ch.flush();
  Frame f = ch.expect(Msg::record);
  ASSERT_EQ(f.payload.size(), big.size() + 1);
  EXPECT_TRUE(std::equal(big.begin(), big.end(), f.payload.begin() + 1));
  sender.join();
  EXPECT_TRUE(done);
}

// B gone while C still reads what B sent: the ACK that C cannot write must not turn into an
// error, or the helper would skip the path that keeps the journal records that did arrive.
TEST(Channel, AckToAGonePeerIsNotAnError) {
  Pipes p;
  std::signal(SIGPIPE, SIG_IGN);  // as coffer does (util/signals.cpp)
  p.b_read.reset();               // nobody reads C's ACKs: writing them fails with EPIPE
  // B's whole message fits in the pipe, so B finishes (and the test ends) whatever C does.
  ASSERT_GE(::fcntl(p.b_write.get(), F_SETPIPE_SZ, 1 << 20), 1 << 20);
  FdStream a(std::move(p.a_read), std::move(p.a_write), "A"),
      b(UniqueFd(::open("/dev/null", O_RDONLY | O_CLOEXEC)), std::move(p.b_write), "B");
  std::vector<std::byte> big(256 << 10, std::byte{5});
  std::thread sender([&] {
    Channel ch(b);
    ch.send(Msg::record, Encoder().u8(1).bytes, big);
    ch.flush();
    b.close_write();
  });
  Channel ch(a);
  ch.send_acks(32 << 10);
  EXPECT_NO_THROW({
    Frame f = ch.expect(Msg::record);
    EXPECT_EQ(f.payload.size(), big.size() + 1);
    EXPECT_FALSE(ch.receive(true)) << "end of stream, not an error";
  });
  sender.join();
}

TEST(State, RoundTrip) {
  ReplicaState s;
  s.kind = DirKind::replica;
  s.detail = "detail";
  s.image_size = 123456;
  ManifestHeader h;
  h.generation = 9;
  h.image_size = 123456;
  s.manifest = h;
  s.manifest_mac.bytes[3] = std::byte{7};
  s.recovered_generation = 9;
  PartialJournal pj;
  pj.header = {9, 10, {}, 123456, 4096, kManifestBlockSize};
  pj.bytes = 5000;
  pj.records.push_back({RecordType::data, 4096, 4096, Hash128{}});
  s.partial = pj;
  ReplicaState back = decode_state(encode_state(s), "peer");
  EXPECT_EQ(back.kind, DirKind::replica);
  EXPECT_EQ(back.detail, "detail");
  EXPECT_EQ(*back.image_size, 123456u);
  EXPECT_EQ(*back.manifest, h);
  EXPECT_EQ(back.manifest_mac, s.manifest_mac);
  EXPECT_EQ(*back.recovered_generation, 9u);
  ASSERT_TRUE(back.partial);
  EXPECT_EQ(back.partial->header, pj.header);
  ASSERT_EQ(back.partial->records.size(), 1u);
  EXPECT_EQ(back.partial->records[0].offset, 4096u);
  auto bytes = encode_state(s);
  bytes.pop_back();
  EXPECT_THROW(decode_state(bytes, "peer"), Error);
}

}  // namespace
}  // namespace coffer::replicate
