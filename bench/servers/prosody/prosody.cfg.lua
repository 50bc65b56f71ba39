-- Prosody, configured for bench/compare.sh: made comparable to Parley's defaults.
--
-- A template: compare.sh replaces @WORK@ (this server's temp dir), @CERT@, @KEY@ and @CERTDIR@ (the run's self-signed
-- ECDSA P-256 certificate for "localhost", shared by all three servers), @PORT@ and @TLS_PORT@. Lines ending
-- in the marker bench:setup-only exist only while compare.sh registers the benchmark users; lines ending in
-- bench:mam-only only when the mam scenario runs; for the scenarios without TLS (login-plain, idle-plain)
-- lines ending in bench:plain-only replace those ending in bench:tls-only. Everything else is what the
-- measured server runs.
--
-- Written for Debian bookworm's Prosody 0.12.3 (Lua 5.4, epoll backend, its default). Started by compare.sh
-- in the foreground as the prosody user, pinned to CPU 0.

-- Foreground, files in the run's temp dir, nothing under /var or /etc.
daemonize = false
pidfile = "@WORK@/prosody.pid"
data_path = "@WORK@/data"
-- Warnings only: Parley runs at "warn" in the benchmark too, and per-connection info lines cost every server.
log = { warn = "@WORK@/prosody.log" }

-- Loopback only, on the benchmark's own ports: c2s with STARTTLS and direct TLS (XEP-0368), like Parley's
-- two client listeners. No s2s, HTTP or component ports: no benchmark client uses them. (Parley's HTTP
-- listeners are on by default, so they run there, unused.)
interfaces = { "127.0.0.1" }
c2s_ports = { @PORT@ }
c2s_direct_tls_ports = { @TLS_PORT@ }
s2s_ports = { }
modules_disabled = { "s2s", "s2s_auth_certs" }
-- Node's listen backlog, which Parley uses (Prosody's default is 128): 50 logins connecting at once must not
-- overflow the queue of pending connections.
network_settings = { tcp_backlog = 511 }

-- TLS required before authentication, like Parley's starttls: required (optional only for login-plain and
-- idle-plain, which measure logins and sessions without TLS).
c2s_require_encryption = true -- bench:tls-only
c2s_require_encryption = false -- bench:plain-only
ssl = { certificate = "@CERT@", key = "@KEY@" }
certificates = "@CERTDIR@" -- the run's certificate directory, instead of a missing certs/ beside the config

-- Internal storage (Prosody's files), like Parley's embedded SQLite; stored SCRAM keys (internal_hashed).
default_storage = "internal"
authentication = "internal_hashed"
-- 4,096 PBKDF2 iterations, Parley's default auth.scram_iterations and ejabberd's fixed count (Prosody's
-- default is 10,000), so registration and PLAIN logins cost the same hashing on every server.
default_iteration_count = 4096
-- SCRAM-SHA-1 and PLAIN, PLAIN only over TLS (both Prosody's defaults and Parley's rule).
allow_unencrypted_plain_auth = false

-- Parley's limits.stanza_size (256 KiB) and stanza_size_preauth (10,000): Prosody's defaults already match.
c2s_stanza_size_limit = 262144
c2s_unauthed_stanza_size_limit = 10000

-- No rate limits: mod_limits is not loaded (it is off unless listed); Parley's read shaping, stanza rate and
-- connection caps are raised far above the benchmark's rates in bench/servers/parley/parley.yml.

-- The module set mirrors Parley's default modules (src/modules/index.ts, those not marked enabledByDefault:
-- false; compare.sh records the list with the figures): disco, caps, pep, ping, keepalive, roster (versioning),
-- offline, register (loopback only), push, vcard, vcard_xupdate, private, version, time, last, smacks, carbons,
-- csi, blocking, and mam. mam is off here outside the mam scenario, as it is by default in this server; Parley
-- keeps its archive (on by default) in every scenario, so it archives every message of the msg and offline runs
-- and this server does not. Parley's defaults also include MUC (muc), HTTP upload (upload), XEP-0478 limits
-- advertisement and its HTTP listeners; no benchmark client uses them, so they are not loaded here.
-- Presence, message, iq and offline storage are loaded automatically by Prosody. Prosody's example
-- configuration also loads bookmarks, uptime, admin shell and more; Parley has none of those by default, so
-- they stay off here.
-- Not available in Debian's prosody package, so Prosody runs without them while Parley and ejabberd have them:
-- XEP-0357 push (mod_cloud_notify, a community module in the separate prosody-modules package, which compare.sh
-- does not install), and server-initiated keepalive pings of silent clients (Parley's keepalive module,
-- ejabberd's mod_ping send_pings; Prosody 0.12 only has TCP keepalives, on by default). No client in the
-- benchmark enables push or stays silent for 5 minutes, so neither is exercised.
modules_enabled = {
	"roster";   -- XEP-0237 versioning is always on in Prosody's roster, as in Parley's default
	"saslauth";
	"tls";
	"disco";
	"pep";      -- XEP-0163 PEP, with XEP-0115 caps handling built in (Prosody has no separate caps module)
	"ping";     -- answers pings, like Parley's ping module
	-- XEP-0198 stream management: Debian's prosody 0.12.3 package ships mod_smacks in
	-- /usr/lib/prosody/modules (no prosody-modules package needed), like Parley's smacks module.
	"smacks";
	"carbons";  -- XEP-0280
	"csi_simple"; -- XEP-0352, holding back unimportant stanzas for inactive clients as Parley's csi does
	"blocklist"; -- XEP-0191
	"register"; -- XEP-0077, loopback only (below), like Parley's register module
	"vcard_legacy"; -- XEP-0054 vCards (kept in PEP) and XEP-0153 avatar hashes in presence
	"private";  -- XEP-0049
	"version";  -- XEP-0092
	"time";     -- XEP-0202
	"lastactivity"; -- XEP-0012
	"mam"; -- bench:mam-only
}

-- In-band registration (XEP-0077) from loopback only, like Parley's built-in "register" access rule; also how
-- bench/register-ibr.ts creates user1..userN during setup. mod_register_limits never throttles addresses on
-- the allowlist, so 10,000 registrations from 127.0.0.1 go through at full speed.
allow_registration = true
registration_allowlist = { "127.0.0.1" }
allowlist_registration_only = true

-- XEP-0313 archives for the mam scenario only: archive every message, keep them for the run. The archive is
-- in SQLite (Parley's storage engine; needs Debian's lua-dbi-sqlite3), not in Prosody's internal files, which
-- keep one user's archive in one file and are not meant for a million messages.
storage = { archive = "sql" } -- bench:mam-only
sql = { driver = "SQLite3", database = "@WORK@/prosody.sqlite" } -- bench:mam-only
default_archive_policy = true -- bench:mam-only
archive_expires_after = "never" -- bench:mam-only
max_archive_query_results = 1000 -- bench:mam-only

VirtualHost "localhost"
