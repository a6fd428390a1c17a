// Where keys come from. Never from a bare argument (it would show in `ps` and shell history).
// Precedence, first found wins for each of key and passphrase:
//   1. --key-file / --passphrase-file / --passphrase-command
//   2. COFFER_KEY_FILE / COFFER_PASSPHRASE_FILE / COFFER_PASSPHRASE_COMMAND
//   3. the [vault] section of the config file
//   4. systemd credentials: $CREDENTIALS_DIRECTORY/coffer.key and .../coffer.passphrase
//   5. (src/cli) an interactive prompt without echo, when stdin is a terminal
#pragma once

#include <optional>
#include <string>

#include "coffer/config/config.hpp"
#include "coffer/util/secret.hpp"

namespace coffer::config {

struct Credentials {
  std::optional<Secret> key;         // raw bytes of a key file
  std::optional<Secret> passphrase;  // passphrase without its trailing newline
  std::string key_source;            // "key file /etc/coffer/vault.key" for messages
  std::string passphrase_source;
  bool any() const { return key.has_value() || passphrase.has_value(); }
};

// Merges the sources in the precedence above (1 = cli, 3 = from_config, may be null).
SecretPaths resolve_secret_paths(const SecretPaths& cli, const SecretPaths* from_config);

// Reads what `paths` names. A named file that is missing is an error (a typo must not fall
// through to the next source); the passphrase command runs without a shell.
Credentials load_credentials(const SecretPaths& paths);

}  // namespace coffer::config
