//! The kcp-tokio README's configuration section, as written (crate name
//! aside): its preset calls, its table of modes and its custom builder chain.

mod support;

use kcp::KcpConfig;

#[test]
fn seed_performance_presets_compile_and_validate() {
    support::init_tracing();
    // Gaming - ultra-low latency (3ms update interval)
    let config = KcpConfig::gaming();
    config.validate().unwrap();
    assert_eq!(config.interval, 3);

    // Real-time communication (8ms update interval)
    let config = KcpConfig::realtime();
    config.validate().unwrap();
    assert_eq!(config.interval, 8);

    // File transfer - high throughput
    let config = KcpConfig::file_transfer();
    config.validate().unwrap();

    // Testing with packet loss simulation
    let config = KcpConfig::testing(0.1); // 10% packet loss
    config.validate().unwrap();
    assert_eq!(config.simulated_loss, 0.1);
}

/// | Mode | Update Interval | Resend | Congestion Control |, as the seed's
/// table says, through the builder and the constructor.
#[test]
fn seed_mode_table_holds_for_both_forms() {
    support::init_tracing();
    let table = [
        (
            "Normal",
            KcpConfig::new().normal_mode(),
            KcpConfig::normal(),
            40,
            0,
            true,
        ),
        (
            "Fast",
            KcpConfig::new().fast_mode(),
            KcpConfig::fast(),
            8,
            2,
            true,
        ),
        (
            "Turbo",
            KcpConfig::new().turbo_mode(),
            KcpConfig::turbo(),
            4,
            1,
            false,
        ),
        (
            "Gaming",
            KcpConfig::new().gaming_mode(),
            KcpConfig::gaming(),
            3,
            1,
            false,
        ),
    ];
    for (mode, built, constructed, interval, resend, congestion_control) in table {
        assert_eq!(built, constructed, "{mode}");
        assert_eq!(built.interval, interval, "{mode}");
        assert_eq!(built.resend, resend, "{mode}");
        assert_eq!(!built.no_congestion_control, congestion_control, "{mode}");
        built.validate().unwrap();
    }
}

#[test]
fn seed_custom_configuration_chain() {
    support::init_tracing();
    use std::time::Duration;

    let config = KcpConfig::new()
        .fast_mode()
        .window_size(128, 128)
        .mtu(1400)
        .connect_timeout(Duration::from_secs(10))
        .keep_alive(Some(Duration::from_secs(30)))
        .stream_mode(true);

    config.validate().unwrap();
    assert_eq!(
        (config.snd_wnd, config.rcv_wnd, config.mtu),
        (128, 128, 1400)
    );
    assert_eq!(config.keep_alive, Some(Duration::from_secs(30)));
    assert!(config.stream_mode);
}
