// Remote addresses ("[user@]host:PATH") and the quoting that carries an argv through a remote
// login shell. No libssh here: the CLI and config code parse addresses without linking SSH.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace coffer {

struct RemoteSpec {
  std::string user;  // empty: the ssh config's User, else the local user name
  std::string host;  // a host name, an IP address (IPv6 without brackets) or a ~/.ssh/config alias
  std::string path;  // may be empty ("host:" means the remote login directory)
};

// "[user@]host:PATH" is remote, like rsync and scp: a spec with no ':' before any '/' is a local
// path ("./a:b", "/x/y:z", "plain"), so any local file name stays addressable. IPv6 addresses are
// written in brackets: "[::1]:/srv", "root@[fe80::1%eth0]:/srv".
std::optional<RemoteSpec> parse_remote(std::string_view spec);

// The spec back as text ("user@host:path", brackets around IPv6), for messages.
std::string format_remote(const RemoteSpec& remote);

// One POSIX shell word that the remote shell turns back into exactly `word`: plain words stay as
// they are, anything else is single-quoted ('it'\''s'). Throws Error(usage) for a NUL byte, which
// no command line can carry.
std::string shell_quote(std::string_view word);
// The argv joined with spaces, each word quoted: what an SSH exec request sends to sshd, which
// runs it through the user's login shell (which must be POSIX-like: sh, bash, dash, zsh).
std::string shell_quote(const std::vector<std::string>& argv);

}  // namespace coffer
