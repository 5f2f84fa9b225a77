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
        // The tests beside this one start servers on free ports too, and one of them may win
        // the race for a port between `free_port` and the bind (as the doc says can happen);
        // a port that was free must be bindable in one of a few tries.
        let bound = (0..10).any(|_| {
            let port = free_port().expect("a free port");
            assert_ne!(port, 0);
            std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
        });
        assert!(bound, "none of 10 free ports could be bound");
    }
}
