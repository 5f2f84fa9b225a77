//! `stockmesh auth …`: the key files and token minting of `stockmesh_http::auth::keys`, printed.

use stockmesh_http::auth::keys::{issuer_from_file, write_key_pair};

use crate::cli::{AuthCommand, KeygenArgs, TokenArgs};

/// Runs an `auth` subcommand.
pub fn run(command: AuthCommand) -> anyhow::Result<()> {
    match command {
        AuthCommand::Keygen(args) => keygen(&args),
        AuthCommand::Token(args) => token(&args),
    }
}

fn keygen(args: &KeygenArgs) -> anyhow::Result<()> {
    let (private, public) = write_key_pair(&args.dir, &args.kid)?;
    println!(
        "private key: {} (keep it secret; it mints tokens)",
        private.display()
    );
    println!(
        "public key:  {} (give it to every node: --auth-public-key {}={})",
        public.display(),
        args.kid,
        public.display()
    );
    Ok(())
}

fn token(args: &TokenArgs) -> anyhow::Result<()> {
    let issuer = issuer_from_file(&args.key, args.kid.clone())?;
    let store = args.store.as_ref().map(|s| s.as_str());
    println!(
        "{}",
        issuer.issue(&args.subject, args.role, store, args.ttl)?
    );
    Ok(())
}
