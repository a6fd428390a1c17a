// coffer vault create|open|close|status|add-key|remove-key|header-backup|grow
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>

#include "coffer/util/atomic_file.hpp"
#include "coffer/util/error.hpp"
#include "coffer/util/units.hpp"
#include "coffer/vault/vault.hpp"
#include "context.hpp"
#include "exit_codes.hpp"
#include "steps.hpp"

namespace coffer::cli {
namespace {

struct VaultArgs {
  std::filesystem::path image;
  void add_to(CLI::App& cmd) {
    cmd.add_option("IMAGE", image, "Vault image file (default: [vault] image in the config)");
  }
  vault::Location location(Context& ctx) {
    if (image.empty()) image = ctx.require_config().vault.image;
    return {image, ctx.runtime_dir()};
  }
};

// Writes a new random key file (mode 0400); refuses to overwrite.
Secret generate_key_file(const std::filesystem::path& path) {
  if (std::filesystem::exists(path))
    fail(ErrorKind::failed, "write key file", path.native(),
         "file exists; refusing to overwrite it");
  Secret key = Secret::random(64);
  AtomicFile file(path, 0400);
  file.write(key.bytes());
  file.commit();
  return key;
}

nlohmann::json slots_json(const std::vector<vault::KeySlot>& keyslots) {
  nlohmann::json slots = nlohmann::json::array();
  for (const auto& k : keyslots)
    slots.push_back({{"slot", k.slot},
                     {"kdf", k.kdf},
                     {"memory_kib", k.kdf_params.memory_kib},
                     {"iterations", k.kdf_params.iterations},
                     {"parallel", k.kdf_params.parallel}});
  return slots;
}

std::string slot_line(const vault::KeySlot& k) {
  return fmt::format("key slot {}:  {} memory {} iterations {} threads {}", k.slot, k.kdf,
                     format_size(std::uint64_t{k.kdf_params.memory_kib} * 1024),
                     k.kdf_params.iterations, k.kdf_params.parallel);
}

nlohmann::json status_json(const vault::Status& s) {
  nlohmann::json slots = slots_json(s.keyslots);
  nlohmann::json j = {{"type", "vault_status"},
                      {"image", s.image.native()},
                      {"exists", s.exists},
                      {"file_size", s.file_size},
                      {"allocated", s.allocated},
                      {"uuid", s.uuid},
                      {"cipher", s.cipher},
                      {"sector_size", s.sector_size},
                      {"data_offset", s.data_offset},
                      {"keyslots", slots},
                      {"mapping", s.mapping},
                      {"mapped", s.mapped},
                      {"open", s.mounted_at && !s.stale},
                      {"stale", s.stale},
                      {"mounted_at", s.mounted_at ? s.mounted_at->native() : ""},
                      {"foreign_loop_devices", s.foreign_loop_devices}};
  if (s.mounted_at) {
    j["fs_size"] = s.fs_size;
    j["fs_free"] = s.fs_free;
  }
  return j;
}

void print_status(Context& ctx, const vault::Status& s) {
  ctx.say(fmt::format("image:       {}", s.image.native()));
  ctx.say(fmt::format("size:        {} ({} allocated)", format_size(s.file_size),
                      format_size(s.allocated)));
  ctx.say(fmt::format("uuid:        {}", s.uuid));
  ctx.say(fmt::format("encryption:  LUKS2 {}, {}-byte sectors, data at {}", s.cipher, s.sector_size,
                      format_size(s.data_offset)));
  for (const auto& k : s.keyslots) ctx.say(slot_line(k));
  std::string state = s.stale ? "stale (left mapped by an interrupted run; `vault close` cleans it)"
                      : s.mounted_at ? "open, mounted at " + s.mounted_at->native()
                                     : "closed";
  ctx.say(fmt::format("state:       {}", state));
  for (const auto& loop : s.foreign_loop_devices)
    ctx.say(fmt::format("attached:    as {} by another program (`vault open` refuses it)", loop));
  if (s.mounted_at && !s.stale)
    ctx.say(
        fmt::format("space:       {} free of {}", format_size(s.fs_free), format_size(s.fs_size)));
}

}  // namespace

int create_vault(Context& ctx, const vault::Location& where, const std::string& size,
                 const SecretOptions& secrets, const vault::KdfParams& kdf,
                 const std::filesystem::path& generate) {
  vault::CreateOptions opts;
  opts.size = parse_size(size, "--size");
  opts.kdf = kdf;
  config::SecretPaths paths = secrets.paths;
  config::Credentials creds = config::load_credentials(
      config::resolve_secret_paths(paths, ctx.config() ? &ctx.config()->vault.secrets : nullptr));
  bool generated = false;
  if (!generate.empty()) {
    if (creds.key)
      fail(ErrorKind::usage, "create vault", where.image.native(),
           "--key-file and --generate-key-file exclude each other");
    creds.key = generate_key_file(generate);
    creds.key_source = "key file " + generate.native();
    generated = true;
  }
  if (!creds.any()) creds = secrets.load(ctx, where.image.native(), true);
  std::vector<vault::KeySlot> slots;
  try {
    slots = vault::create(where, opts, creds);
  } catch (...) {
    if (generated) std::filesystem::remove(generate);  // nothing is left of a failed create
    throw;
  }
  ctx.say(fmt::format("created {} ({})", where.image.native(), format_size(opts.size)));
  // The costs decide how hard a stolen image is to attack: say what was written (after a
  // benchmark they are this machine's, not the defaults).
  for (const auto& k : slots) ctx.say(slot_line(k));
  ctx.emit_json({{"type", "vault_created"},
                 {"image", where.image.native()},
                 {"size", opts.size},
                 {"keyslots", slots_json(slots)}});
  return int{kOk};
}

namespace {

void add_create(CLI::App& vault_cmd, Context& ctx) {
  auto* cmd = vault_cmd.add_subcommand("create", "Create a new encrypted vault image");
  auto args = std::make_shared<VaultArgs>();
  auto size = std::make_shared<std::string>();
  auto secrets = std::make_shared<SecretOptions>();
  auto kdf = std::make_shared<KdfOptions>();
  auto generate = std::make_shared<std::filesystem::path>();
  args->add_to(*cmd);
  cmd->add_option("--size", *size, "Image size, e.g. 100G (the file is sparse)")->required();
  secrets->add_to(*cmd, true);
  cmd->add_option("--generate-key-file", *generate,
                  "Write a new random key file (mode 0400) and add it as a key slot");
  kdf->add_to(*cmd);
  cmd->callback([&ctx, args, size, secrets, kdf, generate] {
    ctx.action = [&ctx, args, size, secrets, kdf, generate] {
      return create_vault(ctx, args->location(ctx), *size, *secrets, kdf->params(), *generate);
    };
  });
}

void add_open_close(CLI::App& vault_cmd, Context& ctx) {
  auto* open = vault_cmd.add_subcommand("open", "Unlock, map and mount a vault");
  auto args = std::make_shared<VaultArgs>();
  auto secrets = std::make_shared<SecretOptions>();
  auto mount = std::make_shared<std::filesystem::path>();
  args->add_to(*open);
  secrets->add_to(*open);
  open->add_option("--mount", *mount,
                   "Mount point (created if missing; default under the runtime dir)");
  open->callback([&ctx, args, secrets, mount] {
    ctx.action = [&ctx, args, secrets, mount] {
      vault::Location where = args->location(ctx);
      std::optional<std::filesystem::path> target;
      if (!mount->empty())
        target = *mount;
      else if (ctx.config() && !ctx.config()->vault.mount.empty())
        target = ctx.config()->vault.mount;
      config::Credentials creds = secrets->load(ctx, where.image.native());
      std::filesystem::path at = vault::open(where, creds, target);
      ctx.say(at.native());
      ctx.emit_json(
          {{"type", "vault_opened"}, {"image", where.image.native()}, {"mounted_at", at.native()}});
      return int{kOk};
    };
  });

  auto* close = vault_cmd.add_subcommand("close", "Sync, unmount and unmap a vault");
  auto cargs = std::make_shared<VaultArgs>();
  cargs->add_to(*close);
  close->callback([&ctx, cargs] {
    ctx.action = [&ctx, cargs] {
      vault::Location where = cargs->location(ctx);
      vault::close(where);
      ctx.emit_json({{"type", "vault_closed"}, {"image", where.image.native()}});
      return int{kOk};
    };
  });

  auto* status = vault_cmd.add_subcommand("status", "Show a vault's header, key slots and state");
  auto sargs = std::make_shared<VaultArgs>();
  sargs->add_to(*status);
  status->callback([&ctx, sargs] {
    ctx.action = [&ctx, sargs] {
      vault::Location where = sargs->location(ctx);
      vault::Status s = vault::status(where);
      if (!s.exists) throw_errno("open vault", where.image, ENOENT, ErrorKind::missing);
      ctx.emit_json(status_json(s));
      print_status(ctx, s);
      return int{kOk};
    };
  });
}

void add_key_commands(CLI::App& vault_cmd, Context& ctx) {
  auto* add = vault_cmd.add_subcommand("add-key", "Add a key file or passphrase to a key slot");
  auto args = std::make_shared<VaultArgs>();
  auto secrets = std::make_shared<SecretOptions>();
  auto kdf = std::make_shared<KdfOptions>();
  auto new_key = std::make_shared<std::filesystem::path>();
  auto new_pass = std::make_shared<std::filesystem::path>();
  auto generate = std::make_shared<std::filesystem::path>();
  args->add_to(*add);
  secrets->add_to(*add);
  auto* nk = add->add_option("--new-key-file", *new_key, "Existing key file to add");
  auto* np =
      add->add_option("--new-passphrase-file", *new_pass, "File holding the passphrase to add");
  auto* gk =
      add->add_option("--generate-key-file", *generate, "Write a new random key file and add it");
  nk->excludes(np)->excludes(gk);
  np->excludes(gk);
  kdf->add_to(*add);
  add->callback([&ctx, args, secrets, kdf, new_key, new_pass, generate] {
    ctx.action = [&ctx, args, secrets, kdf, new_key, new_pass, generate] {
      vault::Location where = args->location(ctx);
      vault::KdfParams params = kdf->params();
      config::Credentials creds = secrets->load(ctx, where.image.native());
      Secret added;
      std::string what;
      if (!new_key->empty()) {
        added = read_secret_file(*new_key, false, 8 * 1024 * 1024);
        what = "key file " + new_key->native();
      } else if (!new_pass->empty()) {
        added = read_secret_file(*new_pass, true);
        what = "passphrase from " + new_pass->native();
      } else if (!generate->empty()) {
        added = generate_key_file(*generate);
        what = "new key file " + generate->native();
      } else {
        added = prompt_passphrase("New passphrase: ", true);
        what = "new passphrase";
      }
      int slot;
      try {
        slot = vault::add_key(where, creds, added, params);
      } catch (...) {
        if (!generate->empty()) std::filesystem::remove(*generate);
        throw;
      }
      ctx.say(fmt::format("added {} as key slot {}", what, slot));
      ctx.emit_json({{"type", "key_added"}, {"image", where.image.native()}, {"slot", slot}});
      return int{kOk};
    };
  });

  auto* remove = vault_cmd.add_subcommand(
      "remove-key", "Remove the key slot the given key opens (or --slot N); never the last one");
  auto rargs = std::make_shared<VaultArgs>();
  auto rsecrets = std::make_shared<SecretOptions>();
  auto slot = std::make_shared<std::optional<int>>();
  rargs->add_to(*remove);
  rsecrets->add_to(*remove);
  remove->add_option("--slot", *slot, "Key slot to remove (authorised by the key given)");
  remove->callback([&ctx, rargs, rsecrets, slot] {
    ctx.action = [&ctx, rargs, rsecrets, slot] {
      vault::Location where = rargs->location(ctx);
      config::Credentials creds = rsecrets->load(ctx, where.image.native());
      int removed = vault::remove_key(where, creds, *slot);
      ctx.say(fmt::format("removed key slot {}", removed));
      ctx.emit_json({{"type", "key_removed"}, {"image", where.image.native()}, {"slot", removed}});
      return int{kOk};
    };
  });

  auto* backup = vault_cmd.add_subcommand("header-backup", "Save the LUKS2 header to a file");
  auto bargs = std::make_shared<VaultArgs>();
  auto file = std::make_shared<std::filesystem::path>();
  backup->add_option("IMAGE", bargs->image, "Vault image file")->required();
  backup->add_option("FILE", *file, "Where to write the header backup (must not exist)")
      ->required();
  backup->callback([&ctx, bargs, file] {
    ctx.action = [&ctx, bargs, file] {
      vault::Location where = bargs->location(ctx);
      vault::header_backup(where, *file);
      ctx.say(fmt::format("header of {} saved to {}", where.image.native(), file->native()));
      ctx.emit_json(
          {{"type", "header_saved"}, {"image", where.image.native()}, {"file", file->native()}});
      return int{kOk};
    };
  });
}

void add_grow(CLI::App& vault_cmd, Context& ctx) {
  auto* grow = vault_cmd.add_subcommand("grow", "Grow a closed vault (file, LUKS, ext4) in place");
  auto args = std::make_shared<VaultArgs>();
  auto secrets = std::make_shared<SecretOptions>();
  auto size = std::make_shared<std::string>();
  args->add_to(*grow);
  secrets->add_to(*grow);
  grow->add_option("--size", *size, "New total size, e.g. 200G")->required();
  grow->callback([&ctx, args, secrets, size] {
    ctx.action = [&ctx, args, secrets, size] {
      vault::Location where = args->location(ctx);
      std::uint64_t bytes = parse_size(*size, "--size");
      config::Credentials creds = secrets->load(ctx, where.image.native());
      vault::grow(where, creds, bytes);
      ctx.say(fmt::format("grew {} to {}", where.image.native(), format_size(bytes)));
      ctx.emit_json({{"type", "vault_grown"}, {"image", where.image.native()}, {"size", bytes}});
      return int{kOk};
    };
  });
}

}  // namespace

void register_vault_commands(CLI::App& app, Context& ctx) {
  auto* vault_cmd = app.add_subcommand("vault", "Manage the encrypted vault (LUKS2 + ext4)");
  vault_cmd->require_subcommand(1);
  add_create(*vault_cmd, ctx);
  add_open_close(*vault_cmd, ctx);
  add_key_commands(*vault_cmd, ctx);
  add_grow(*vault_cmd, ctx);
}

}  // namespace coffer::cli
