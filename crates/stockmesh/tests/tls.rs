//! TLS to Redis: a private `redis-server --tls-port` with a CA, a server and a client certificate
//! made by `openssl` in the test. The broker connects over `rediss://` trusting that CA and
//! presenting its client certificate; without the CA, or without the client certificate, it
//! cannot talk to Redis.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use stockmesh_bus::{Broker, RedisBroker, RedisConfig, RedisTls};
use stockmesh_core::StoreId;

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate, all signed by the CA.
fn certificates(dir: &Path) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "1",
            "-subj",
            "/CN=stockmesh test CA",
        ],
    );
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n",
    )
    .expect("ext");
    std::fs::write(
        dir.join("client.ext"),
        "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n",
    )
    .expect("ext");
    for name in ["server", "client"] {
        openssl(
            dir,
            &[
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.csr"),
                "-subj",
                &format!("/CN={name}"),
            ],
        );
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &format!("{name}.crt"),
                "-days",
                "1",
                "-extfile",
                &format!("{name}.ext"),
            ],
        );
    }
}

struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn broker(port: u16, tls: RedisTls) -> RedisBroker {
    RedisBroker::new(RedisConfig {
        tls,
        response_timeout: Duration::from_secs(2),
        ..RedisConfig::new(format!("rediss://127.0.0.1:{port}"))
    })
    .expect("broker")
}

#[tokio::test]
async fn the_broker_talks_to_redis_over_tls_with_a_ca_and_a_client_certificate() {
    let dir = tempfile::tempdir().expect("dir");
    certificates(dir.path());
    let port = stockmesh_process::free_port().expect("port");
    let d = |name: &str| dir.path().join(name).display().to_string();
    let _server = Server(
        Command::new("redis-server")
            .current_dir(dir.path())
            .args([
                "--port",
                "0",
                "--tls-port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
            ])
            .args([
                "--tls-cert-file",
                &d("server.crt"),
                "--tls-key-file",
                &d("server.key"),
            ])
            .args([
                "--tls-ca-cert-file",
                &d("ca.crt"),
                "--tls-auth-clients",
                "yes",
            ])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server starts"),
    );
    let read = |name: &str| std::fs::read(dir.path().join(name)).expect("read");
    let good = broker(
        port,
        RedisTls {
            ca: Some(read("ca.crt")),
            client: Some((read("client.crt"), read("client.key"))),
        },
    );
    let mut ready = false;
    for _ in 0..100 {
        if good.ping().await.is_ok() {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ready, "no TLS PING answered");
    let store = StoreId::parse("store-1").expect("valid");
    good.beat(&store, 42, Duration::from_secs(10))
        .await
        .expect("beat");
    assert_eq!(good.last_beat(&store).await.expect("read"), Some(42));

    // Without the CA the server's certificate is not trusted; without a client certificate the
    // server refuses the connection.
    let untrusting = broker(
        port,
        RedisTls {
            ca: None,
            client: Some((read("client.crt"), read("client.key"))),
        },
    );
    assert!(untrusting.ping().await.is_err());
    let anonymous = broker(
        port,
        RedisTls {
            ca: Some(read("ca.crt")),
            client: None,
        },
    );
    assert!(anonymous.ping().await.is_err());
}

/// Sends `GET /healthz` over TLS to `port`, trusting only `ca` (if any); the response text.
async fn https_get(port: u16, ca: Option<&[u8]>) -> Result<String, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut roots = rustls::RootCertStore::empty();
    if let Some(ca) = ca {
        for cert in CertificateDer::pem_slice_iter(ca) {
            roots.add(cert.expect("pem")).expect("root");
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|e| e.to_string())?;
    let name = ServerName::try_from("localhost").expect("name");
    let mut tls = connector
        .connect(name, tcp)
        .await
        .map_err(|e| e.to_string())?;
    tls.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .map_err(|e| e.to_string())?;
    let mut answer = Vec::new();
    let _ = tls.read_to_end(&mut answer).await;
    Ok(String::from_utf8_lossy(&answer).into_owned())
}

#[tokio::test]
async fn a_node_serves_https_that_a_checking_client_trusts_through_its_ca() {
    let dir = tempfile::tempdir().expect("dir");
    certificates(dir.path());
    let read = |name: &str| std::fs::read(dir.path().join(name)).expect("read");
    let acceptor = stockmesh_http::server::tls_acceptor(&read("server.crt"), &read("server.key"))
        .expect("acceptor");
    let node = stockmesh_store::StoreNode::start(
        stockmesh_store::StoreConfig {
            tls: Some(acceptor),
            ..stockmesh_store::StoreConfig::new(
                StoreId::parse("store-1").expect("valid"),
                stockmesh_bus::DbConfig::new(dir.path().join("s.db").display().to_string()),
            )
        },
        tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind"),
        None,
    )
    .await
    .expect("store starts");
    let port = node.addr().port();
    let answer = https_get(port, Some(&read("ca.crt")))
        .await
        .expect("TLS works");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    // A client that does not trust the CA refuses the certificate.
    assert!(https_get(port, None).await.is_err());
    node.shutdown().await;
}
