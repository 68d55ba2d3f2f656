//! Stream schemas shared by the recorder (which writes them) and replay
//! (which reads them by name): the column names of spec/STREAMS.md.

/// The `system` stream (kv codec).
pub mod system {
    /// Names of the `/proc/stat` cpu-line fields, in kernel order: the
    /// columns `cpu.<field>` and `cpu<N>.<field>` (USER_HZ ticks).
    pub const CPU_FIELDS: [&str; 10] = [
        "user",
        "nice",
        "system",
        "idle",
        "iowait",
        "irq",
        "softirq",
        "steal",
        "guest",
        "guest_nice",
    ];
}

/// The `process` stream (table codec).
pub mod process {
    use crate::table::TableSchema;

    pub const VALUES: [&str; 27] = [
        "state",
        "priority",
        "nice",
        "num_threads",
        "vsize",
        "rss_pages",
        "minflt",
        "majflt",
        "utime",
        "stime",
        "processor",
        "blkio_ticks",
        "vol_cs",
        "invol_cs",
        "rss_anon_kb",
        "rss_file_kb",
        "rss_shmem_kb",
        "swap_kb",
        "rchar",
        "wchar",
        "read_bytes",
        "write_bytes",
        "cancelled_write_bytes",
        "run_ns",
        "wait_ns",
        "timeslices",
        "io_ok",
    ];
    pub const ATTR_INTS: [&str; 9] = [
        "pid",
        "tgid",
        "starttime",
        "ppid",
        "pgrp",
        "session",
        "uid",
        "euid",
        "is_thread",
    ];
    pub const ATTR_STRS: [&str; 3] = ["comm", "cmdline", "exe"];
    pub const EVENT_INTS: [&str; 12] = [
        "pid",
        "tgid",
        "ppid",
        "uid",
        "start_ns",
        "elapsed_us",
        "exit_code",
        "utime_us",
        "stime_us",
        "read_bytes",
        "write_bytes",
        "whole_process",
    ];
    pub const EVENT_STRS: [&str; 1] = ["comm"];

    /// The table schema the recorder writes.
    pub fn table_schema() -> TableSchema {
        let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect();
        TableSchema {
            values: v(&VALUES),
            attr_ints: v(&ATTR_INTS),
            attr_strs: v(&ATTR_STRS),
            event_ints: v(&EVENT_INTS),
            event_strs: v(&EVENT_STRS),
        }
    }
}

/// The `kernel` stream (kv codec): field names replay needs by position.
pub mod kernel {
    /// `/proc/net/dev` fields after `<iface>:`, in kernel order: the
    /// columns `net.<iface>.<field>`.
    pub const NET_DEV_FIELDS: [&str; 16] = [
        "rx_bytes",
        "rx_packets",
        "rx_errs",
        "rx_drop",
        "rx_fifo",
        "rx_frame",
        "rx_compressed",
        "rx_multicast",
        "tx_bytes",
        "tx_packets",
        "tx_errs",
        "tx_drop",
        "tx_fifo",
        "tx_colls",
        "tx_carrier",
        "tx_compressed",
    ];
}
