//! The command line. Every flag has an environment variable of the same meaning.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use stockmesh_bus::Durability;
use stockmesh_core::StoreId;
use stockmesh_process::{parse_duration, parse_ttl};
use stockmesh_telemetry::LogFormat;

/// stockmesh: a chain's stock, propagated in milliseconds, never oversold.
#[derive(Debug, Parser)]
#[command(name = "stockmesh", version, about, long_about = None)]
pub struct Cli {
    /// Log output: `human` for people, `json` for log collectors. Filter with RUST_LOG.
    #[arg(long, global = true, env = "STOCKMESH_LOG_FORMAT", value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,

    /// Export traces over OTLP/gRPC to this collector (e.g. http://127.0.0.1:4317). Off when absent.
    #[arg(long, global = true, env = "STOCKMESH_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,

    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a whole local cluster in one process: Central and N stores.
    Up(UpArgs),
    /// Run one Central node.
    Central(CentralArgs),
    /// Run one Store node: its HTTP API over its own SQLite database.
    Store(StoreArgs),
    /// Measure the performance figures against their goals (see BENCHMARKS.md).
    Bench(stockmesh_bench::BenchArgs),
    /// Run the fault suite: a randomized workload with injected faults, then the invariant checker.
    Chaos(stockmesh_chaos::ChaosArgs),
    /// Signing keys and bearer tokens.
    #[command(subcommand)]
    Auth(AuthCommand),
    /// Print `ACL SETUSER` lines for least-privilege Redis users (one per store, one for Central)
    /// with fresh passwords; feed them to `redis-cli`.
    RedisAcl(RedisAclArgs),
}

/// Flags of `stockmesh redis-acl`.
#[derive(Debug, Args)]
pub struct RedisAclArgs {
    /// The stores (comma-separated).
    #[arg(long, value_delimiter = ',', required = true)]
    pub stores: Vec<StoreId>,
    /// Central's user name.
    #[arg(long, default_value = "central")]
    pub central_user: String,
    /// Users for a Redis Cluster: the partitioned key names (`stockmesh:{p07}:store-1:…`) and
    /// the slot map, to be set on every node.
    #[arg(long, env = "STOCKMESH_REDIS_ACL_CLUSTER")]
    pub cluster: bool,
}

/// `stockmesh auth …`.
#[derive(Debug, Subcommand)]
pub enum AuthCommand {
    /// Write a new Ed25519 key pair: `<dir>/<kid>.key` (private, 0600) and `<dir>/<kid>.pub`.
    Keygen(KeygenArgs),
    /// Print a bearer token signed with a private key.
    Token(TokenArgs),
}

/// Flags of `stockmesh auth keygen`.
#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Directory for the key files (created 0700 if missing).
    #[arg(long, default_value = "./keys")]
    pub dir: PathBuf,
    /// The key's id (`kid`); nodes look verification keys up by it.
    #[arg(long, default_value = "k1")]
    pub kid: String,
}

/// Flags of `stockmesh auth token`.
#[derive(Debug, Args)]
pub struct TokenArgs {
    /// The private key (PKCS#8 PEM, readable by its owner only).
    #[arg(
        long,
        env = "STOCKMESH_AUTH_PRIVATE_KEY",
        default_value = "./keys/k1.key"
    )]
    pub key: PathBuf,
    /// The key's id; default: the key file's name without extension.
    #[arg(long)]
    pub kid: Option<String>,
    /// admin, store, sales, viewer or metrics.
    #[arg(long)]
    pub role: stockmesh_http::auth::Role,
    /// For `--role store`: the store whose API the token opens.
    #[arg(long)]
    pub store: Option<StoreId>,
    /// How long the token is valid (e.g. 8h, 30d).
    #[arg(long, default_value = "8h", value_parser = parse_ttl)]
    pub ttl: Duration,
    /// Who the token is for (free text, in the `sub` claim).
    #[arg(long, default_value = "stockmesh")]
    pub subject: String,
}

/// Flags about who may call a node.
#[derive(Debug, Clone, Args)]
pub struct AuthArgs {
    /// Public keys that verify bearer tokens: `KID=PATH`, or `PATH` (the kid is the file name
    /// without extension). Several (repeated or comma-separated) let keys rotate.
    #[arg(
        long = "auth-public-key",
        env = "STOCKMESH_AUTH_PUBLIC_KEYS",
        value_delimiter = ','
    )]
    pub public_keys: Vec<String>,

    /// Serve without authentication on a non-loopback address: anyone who reaches the port may
    /// do anything. Without it, such a node refuses to start.
    #[arg(long, env = "STOCKMESH_INSECURE_NO_AUTH")]
    pub insecure_no_auth: bool,
}

/// Flags about the broker and liveness, shared by every node.
#[derive(Debug, Clone, Args)]
pub struct BusArgs {
    /// Redis URL (`redis://host:port`, `rediss://user:pass@host:port` for TLS and ACL users).
    /// For `up`: when absent, a Redis on 127.0.0.1:6379 is used if it answers, else a private
    /// redis-server is started if installed, else the in-process broker.
    #[arg(long, env = "STOCKMESH_REDIS")]
    pub redis: Option<String>,

    /// Redis Cluster seed nodes, comma-separated (`redis://h1:7000,redis://h2:7000`); instead of
    /// --redis. TLS (`rediss://`), ACL users and --redis-ca/--redis-client-* work alike.
    #[arg(long, env = "STOCKMESH_REDIS_CLUSTER", conflicts_with = "redis")]
    pub redis_cluster: Option<String>,

    /// For `rediss://`: the CA certificate (PEM) that signs Redis's certificate, instead of the
    /// system's roots.
    #[arg(long, env = "STOCKMESH_REDIS_CA")]
    pub redis_ca: Option<PathBuf>,

    /// For `rediss://` to a Redis that requires client certificates: this node's certificate
    /// (PEM); give --redis-client-key too.
    #[arg(
        long,
        env = "STOCKMESH_REDIS_CLIENT_CERT",
        requires = "redis_client_key"
    )]
    pub redis_client_cert: Option<PathBuf>,

    /// The private key (PEM, owner-only) of --redis-client-cert.
    #[arg(
        long,
        env = "STOCKMESH_REDIS_CLIENT_KEY",
        requires = "redis_client_cert"
    )]
    pub redis_client_key: Option<PathBuf>,

    /// How often a store refreshes its heartbeat.
    #[arg(long, env = "STOCKMESH_HEARTBEAT_INTERVAL", default_value = "30s", value_parser = parse_duration)]
    pub heartbeat_interval: Duration,

    /// A store whose heartbeat is older than this is offline: Central refuses its remote purchases.
    #[arg(long, env = "STOCKMESH_HEARTBEAT_TIMEOUT", default_value = "50s", value_parser = parse_duration)]
    pub heartbeat_timeout: Duration,

    /// Entries idle this long in a crashed consumer's hands are taken over by another.
    #[arg(long, env = "STOCKMESH_CLAIM_IDLE", default_value = "30s", value_parser = parse_duration)]
    pub claim_idle: Duration,

    /// Approximate cap of each stream (XADD MAXLEN ~). Must exceed the events a consumer can fall
    /// behind by during its longest outage.
    #[arg(long, env = "STOCKMESH_STREAM_MAX_LEN", default_value_t = 1_000_000)]
    pub stream_max_len: u64,

    /// Largest stream entry a consumer accepts, in bytes; a larger one is dead-lettered unread.
    #[arg(long, env = "STOCKMESH_MAX_ENTRY_BYTES", default_value_t = 1024 * 1024, value_parser = clap::value_parser!(u32).range(1024..))]
    pub max_entry_bytes: u32,
}

/// Bounds of every HTTP listener against hostile or broken clients.
#[derive(Debug, Clone, Args)]
pub struct HttpArgs {
    /// Connections a node holds open at once; one more is answered 503 and closed.
    #[arg(long, env = "STOCKMESH_MAX_CONNECTIONS", default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,

    /// A request head (request line and headers) must arrive within this time of its first byte.
    #[arg(long, env = "STOCKMESH_HEADER_READ_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub header_read_timeout: Duration,

    /// A connection with no request in progress and nothing received for this long is closed.
    #[arg(long, env = "STOCKMESH_IDLE_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    pub idle_timeout: Duration,

    /// A request not answered within this time gets a 503. Keep it above --purchase-wait.
    #[arg(long, env = "STOCKMESH_REQUEST_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub request_timeout: Duration,
}

/// Flags about HTTPS on a node's listener.
#[derive(Debug, Clone, Args)]
pub struct TlsArgs {
    /// Serve HTTPS with this certificate chain (PEM); give --tls-key too.
    #[arg(long, env = "STOCKMESH_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// The private key (PEM, owner-only) of --tls-cert.
    #[arg(long, env = "STOCKMESH_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

impl HttpArgs {
    /// The listener bounds these flags describe.
    pub fn limits(&self) -> stockmesh_http::server::ServerLimits {
        stockmesh_http::server::ServerLimits {
            max_connections: usize::try_from(self.max_connections).unwrap_or(usize::MAX),
            header_read_timeout: self.header_read_timeout,
            idle_timeout: self.idle_timeout,
            request_timeout: self.request_timeout,
        }
    }
}

/// Flags about local storage, shared by every node.
#[derive(Debug, Clone, Args)]
pub struct StorageArgs {
    /// Commit durability: `full` (fsync every commit; survives power loss) or `normal` (may lose
    /// the last commits on power loss, never corrupts).
    #[arg(long, env = "STOCKMESH_DURABILITY", default_value = "full")]
    pub durability: Durability,

    /// Group commit: concurrent writes share one transaction (one fsync), up to this many
    /// (1 to 4096); each is answered once that transaction is durable.
    #[arg(long, env = "STOCKMESH_GROUP_COMMIT_MAX", default_value_t = 64)]
    pub group_commit_max: usize,

    /// Group commit: how long an open group waits for more writes when none is queued (at most
    /// 10ms); 0: it takes the writes that queued while the previous group committed.
    #[arg(long, env = "STOCKMESH_GROUP_COMMIT_WAIT", default_value = "0us", value_parser = parse_duration)]
    pub group_commit_wait: Duration,
}

/// Flags about remote purchases and self-healing (Central).
#[derive(Debug, Clone, Args)]
pub struct PurchaseArgs {
    /// How long a remote purchase request waits for the store before answering 202.
    #[arg(long, env = "STOCKMESH_PURCHASE_WAIT", default_value = "5s", value_parser = parse_duration)]
    pub purchase_wait: Duration,

    /// A store refuses a remote purchase that reaches it later than this after it was made.
    #[arg(long, env = "STOCKMESH_PURCHASE_DEADLINE", default_value = "30s", value_parser = parse_duration)]
    pub purchase_deadline: Duration,

    /// A remote purchase still pending this long has its command sent again (and again every
    /// this long) while its store is online: the command or the reply may have been lost.
    #[arg(long, env = "STOCKMESH_RESEND_AFTER", default_value = "5s", value_parser = parse_duration)]
    pub resend_after: Duration,

    /// How often Central compares each store's advertised watermark and digest with its view.
    #[arg(long, env = "STOCKMESH_REPAIR_INTERVAL", default_value = "5s", value_parser = parse_duration)]
    pub repair_interval: Duration,

    /// How long Central may stay behind a store before it asks for a repair (and how long a
    /// repair may go without progress before it is given up and escalated).
    #[arg(long, env = "STOCKMESH_REPAIR_GRACE", default_value = "30s", value_parser = parse_duration)]
    pub repair_grace: Duration,
}

/// Flags of `stockmesh store`.
#[derive(Debug, Args)]
pub struct StoreArgs {
    /// The store's id (1-64 characters of A-Z a-z 0-9 . _ -).
    #[arg(long, env = "STOCKMESH_STORE_ID")]
    pub id: StoreId,

    /// Address for the HTTP API (port 0 picks a free port; the URL is printed).
    #[arg(long, env = "STOCKMESH_LISTEN", default_value = "127.0.0.1:8082")]
    pub listen: SocketAddr,

    /// The store's SQLite database (created with its directory if missing).
    /// Default: sqlite://./data/<id>.db
    #[arg(long, env = "STOCKMESH_DB")]
    pub db: Option<String>,

    /// Work alone, without a broker: events wait in the outbox.
    #[arg(long, env = "STOCKMESH_STANDALONE")]
    pub standalone: bool,

    #[command(flatten)]
    pub auth: AuthArgs,

    #[command(flatten)]
    pub tls: TlsArgs,

    #[command(flatten)]
    pub http: HttpArgs,

    #[command(flatten)]
    pub bus: BusArgs,

    #[command(flatten)]
    pub storage: StorageArgs,
}

/// Flags of `stockmesh central`.
#[derive(Debug, Args)]
pub struct CentralArgs {
    /// Address for the HTTP API (port 0 picks a free port; the URL is printed).
    #[arg(long, env = "STOCKMESH_LISTEN", default_value = "127.0.0.1:8081")]
    pub listen: SocketAddr,

    /// Central's database: an SQLite file (created with its directory if missing), or a
    /// PostgreSQL database `postgres://user:password@host:5432/name` (it must exist; the
    /// migrations create the tables). `--help` never shows the value taken from the environment.
    #[arg(
        long,
        env = "STOCKMESH_DB",
        hide_env_values = true,
        default_value = "sqlite://./data/central.db"
    )]
    pub db: String,

    /// This replica's consumer name: unique per replica, stable across restarts.
    #[arg(long, env = "STOCKMESH_CONSUMER_NAME", default_value = "central-1")]
    pub consumer_name: String,

    /// Stores to know before they announce themselves (comma-separated).
    #[arg(long, env = "STOCKMESH_STORES", value_delimiter = ',')]
    pub stores: Vec<StoreId>,

    #[command(flatten)]
    pub auth: AuthArgs,

    #[command(flatten)]
    pub tls: TlsArgs,

    #[command(flatten)]
    pub purchase: PurchaseArgs,

    #[command(flatten)]
    pub http: HttpArgs,

    #[command(flatten)]
    pub bus: BusArgs,

    #[command(flatten)]
    pub storage: StorageArgs,
}

/// Flags of `stockmesh up`.
#[derive(Debug, Args)]
pub struct UpArgs {
    /// How many stores (`store-1` … `store-N`).
    #[arg(long, env = "STOCKMESH_STORES_COUNT", default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub stores: u16,

    /// Directory for every node's SQLite file (and a private Redis's data).
    #[arg(long, env = "STOCKMESH_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// Address to listen on.
    #[arg(long, env = "STOCKMESH_HOST", default_value = "127.0.0.1")]
    pub host: IpAddr,

    /// Central's port; stores take the next ones (0: every node picks a free port).
    #[arg(long, env = "STOCKMESH_PORT", default_value_t = 8081)]
    pub port: u16,

    /// Require tokens: generate a key pair under the data directory and print an admin token and
    /// one token per store. Without it the cluster is open to whoever reaches its ports.
    #[arg(long, env = "STOCKMESH_UP_AUTH")]
    pub auth: bool,

    #[command(flatten)]
    pub purchase: PurchaseArgs,

    #[command(flatten)]
    pub http: HttpArgs,

    #[command(flatten)]
    pub bus: BusArgs,

    #[command(flatten)]
    pub storage: StorageArgs,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
