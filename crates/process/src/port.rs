//! Free ports, for processes that must keep one address across restarts (a node started again
//! after a kill -9, a `redis-server` restarted on its data).

/// A port of 127.0.0.1 that nothing listened on a moment ago. Another process may take it before
/// the caller binds it; callers that spawn a server on it retry on another port.
pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_free_port_can_be_bound() {
        let port = free_port().expect("a free port");
        assert_ne!(port, 0);
        std::net::TcpListener::bind(("127.0.0.1", port)).expect("the port is free");
    }
}
