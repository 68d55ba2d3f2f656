//! `lpo`: a Linux performance flight recorder.
//!
//! Exit codes: 0 success; 1 failure (unreadable, corrupt or foreign file,
//! nothing recorded at TIME, I/O error, ring locked by another recorder);
//! 2 bad command line (unknown command, view or option, unparseable TIME,
//! size or duration); 70 internal error (a bug: reported in one line).

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "lpo",
    version,
    about = "Linux performance flight recorder: record /proc into a bounded ring, replay any moment as vmstat, mpstat, free, uptime"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Args, Clone)]
struct FileArg {
    /// Ring or capture file [default: /var/lib/lpo/lpo.ring for root, else
    /// $XDG_STATE_HOME/lpo/lpo.ring; $LPO_RING overrides]
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    file: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Record system metrics into the ring until SIGINT/SIGTERM.
    Record {
        #[command(flatten)]
        file: FileArg,
        /// Ring size when creating it (e.g. 64MiB, 1GiB).
        #[arg(long, default_value = "1GiB")]
        size: String,
        /// Sampling interval (e.g. 1s, 200ms).
        #[arg(long, default_value = "1s")]
        interval: String,
        /// msync interval: the most a power cut or kernel panic can lose.
        #[arg(long, default_value = "10s")]
        flush: String,
        /// Stop after this many samples.
        #[arg(long)]
        samples: Option<u64>,
        /// Stop after this long (e.g. 10m).
        #[arg(long)]
        duration: Option<String>,
        /// Read /proc from another root (testing).
        #[arg(long, hide = true, default_value = "/proc")]
        proc_root: PathBuf,
        /// Print nothing but errors.
        #[arg(short, long)]
        quiet: bool,
        /// Do not record processes (the process stream).
        #[arg(long)]
        no_processes: bool,
        /// Do not record the kernel stream (disks, network, interrupts, slabs).
        #[arg(long)]
        no_kernel: bool,
        /// Also record every thread (/proc/PID/task/*).
        #[arg(long)]
        threads: bool,
        /// Turn on kernel.task_delayacct so pidstat -d shows iodelay.
        #[arg(long)]
        delayacct: bool,
        /// CPU profiling frequency (samples per second per CPU, with call stacks).
        #[arg(long, default_value_t = 49, value_name = "HZ")]
        perf_freq: u64,
        /// Do not record CPU profiles (the perf stream).
        #[arg(long)]
        no_perf: bool,
        /// Do not record kernel trace events (the ftrace stream).
        #[arg(long)]
        no_ftrace: bool,
        /// Trace events to record besides the defaults: GROUP:EVENT[:FILTER],...
        #[arg(long, value_name = "LIST", value_delimiter = ',')]
        events: Vec<String>,
    },
    /// Show what the recorded tools would have printed at TIME.
    ///
    /// Views: vmstat, mpstat [-P ALL|N,M], free [-k|-m|-g|-h], uptime, summary (default).
    /// TIME: 14:22, 14:22:05, "2026-11-27 14:22:05", RFC 3339, -5m, "5m ago", @UNIX.
    Replay {
        #[command(flatten)]
        file: FileArg,
        /// The moment to show.
        #[arg(long, value_name = "TIME")]
        at: Option<String>,
        /// Start of a window: one row per recorded interval.
        #[arg(long, value_name = "TIME")]
        from: Option<String>,
        /// End of the window.
        #[arg(long, value_name = "TIME")]
        to: Option<String>,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
        /// Read and print times in UTC instead of the recorded host's time zone.
        #[arg(long)]
        utc: bool,
        /// VIEW [ARGS...]
        #[arg(
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "VIEW"
        )]
        view: Vec<String>,
    },
    /// Export a time slice of the ring to a standalone capture file to ship
    /// (same format; replays anywhere: other time zone, no root, no /proc).
    Export {
        #[command(flatten)]
        file: FileArg,
        /// Start of the slice.
        #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
        from: String,
        /// End of the slice.
        #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
        to: String,
        /// Output file (must not exist; for perfetto, "-" is standard output).
        #[arg(short = 'o', long = "output", value_name = "OUT")]
        output: PathBuf,
        /// Output format: lpo (a capture to replay elsewhere), or perfetto
        /// (Chrome trace-event JSON of the kernel trace events: per-CPU
        /// scheduling, threads, block I/O; opens in the Perfetto UI).
        #[arg(long, default_value = "lpo", value_name = "FORMAT")]
        format: String,
        /// Streams to keep, e.g. system,process,kernel (default: all; system is always kept).
        #[arg(long, value_delimiter = ',')]
        streams: Vec<String>,
        /// Scrub before writing: all, or a list of cmdline,users,hostnames,addresses.
        #[arg(long, value_name = "WHAT", num_args = 0..=1, default_missing_value = "all")]
        redact: Option<String>,
        /// Read TIME in UTC instead of the recorded host's time zone.
        #[arg(long)]
        utc: bool,
        /// Print nothing but errors.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Dump a stream's time series as CSV, NDJSON or Parquet.
    ///
    /// STREAM: system, cpu, process, disk, iface, conntrack. One row per
    /// recorded interval (per CPU, process, device, interface) ending in the
    /// window; every row carries host and boot_id. Columns: spec/VIEWS.md.
    Dump {
        #[command(flatten)]
        file: FileArg,
        /// Start of the window [default: the first sample].
        #[arg(long, value_name = "TIME")]
        from: Option<String>,
        /// End of the window [default: the last sample].
        #[arg(long, value_name = "TIME")]
        to: Option<String>,
        /// Output format: csv, json (one object per line) or parquet.
        #[arg(
            short = 'O',
            long = "format",
            value_name = "FORMAT",
            default_value = "csv"
        )]
        format: String,
        /// Output file [default: standard output; parquet needs one].
        #[arg(short = 'o', long = "output", value_name = "OUT")]
        output: Option<PathBuf>,
        /// These columns, in this order (a,b,c).
        #[arg(long, value_name = "FIELDS")]
        fields: Option<String>,
        /// Read bare clock times in UTC instead of the recorded host's time zone.
        #[arg(long)]
        utc: bool,
        /// system, cpu, process, disk, iface or conntrack.
        #[arg(value_name = "STREAM")]
        stream: String,
    },
    /// Describe a ring or capture: host, time range, streams, integrity.
    Info {
        #[command(flatten)]
        file: FileArg,
        #[arg(long)]
        json: bool,
    },
}

/// The default ring path for this user.
fn default_ring() -> PathBuf {
    if let Some(p) = std::env::var_os("LPO_RING").filter(|p| !p.is_empty()) {
        return p.into();
    }
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        return "/var/lib/lpo/lpo.ring".into();
    }
    let state = std::env::var_os("XDG_STATE_HOME")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .unwrap_or_else(|| PathBuf::from("."));
    state.join("lpo/lpo.ring")
}

/// A failure with its exit code.
struct Fail(i32, String);

impl<E: std::fmt::Display> From<E> for Fail {
    fn from(e: E) -> Fail {
        Fail(1, e.to_string())
    }
}

fn usage(e: impl std::fmt::Display) -> Fail {
    Fail(2, e.to_string())
}

fn run(cli: Cli) -> Result<(), Fail> {
    match cli.cmd {
        Cmd::Record {
            file,
            size,
            interval,
            flush,
            samples,
            duration,
            proc_root,
            quiet,
            no_processes,
            no_kernel,
            threads,
            delayacct,
            perf_freq,
            no_perf,
            no_ftrace,
            events,
        } => {
            let events = events
                .iter()
                .map(|e| lpo_recorder::ftrace::EventSpec::parse(e))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| usage(format!("--events {e}")))?;
            let ring = file.file.unwrap_or_else(default_ring);
            let size = lpo_replay::time::parse_size(&size).map_err(usage)?;
            let interval = lpo_replay::time::parse_duration(&interval).map_err(usage)?;
            let flush = lpo_replay::time::parse_duration(&flush).map_err(usage)?;
            if interval.is_zero() || flush.is_zero() {
                return Err(usage("--interval and --flush must be greater than zero"));
            }
            if !no_perf && !(1..=10_000).contains(&perf_freq) {
                return Err(usage("--perf-freq must be between 1 and 10000"));
            }
            let duration = duration
                .map(|d| lpo_replay::time::parse_duration(&d))
                .transpose()
                .map_err(usage)?;
            let clock_step = std::env::var("LPO_TEST_CLOCK_STEP").ok().and_then(|v| {
                let (a, b) = v.split_once(':')?;
                Some((a.parse().ok()?, b.parse().ok()?))
            });
            let opts = lpo_recorder::daemon::RecordOptions {
                ring: ring.clone(),
                size,
                interval,
                flush,
                proc_root,
                samples,
                duration,
                clock_step,
                processes: !no_processes,
                threads,
                delayacct,
                kernel: !no_kernel,
                perf_freq: (!no_perf).then_some(perf_freq),
                ftrace: !no_ftrace,
                events,
            };
            let s = lpo_recorder::daemon::record(&opts, &mut |line| {
                if !quiet || !line.starts_with("note") {
                    eprintln!("lpo: {line}")
                }
            })?;
            if !quiet {
                eprintln!(
                    "lpo: stopped after {} samples; {} sealed and flushed",
                    s.samples,
                    ring.display()
                );
            }
            Ok(())
        }
        Cmd::Replay {
            mut file,
            at,
            from,
            to,
            mut json,
            mut utc,
            view,
        } => {
            // Options given after the view (`lpo replay --at T vmstat -f RING`) still count.
            let mut rest = Vec::new();
            let mut it = view.into_iter();
            while let Some(a) = it.next() {
                match a.as_str() {
                    "-f" | "--file" => {
                        let f = it
                            .next()
                            .ok_or_else(|| usage(format!("{a} needs a FILE")))?;
                        file.file = Some(f.into());
                    }
                    "--json" => json = true,
                    "--utc" => utc = true,
                    _ => rest.push(a),
                }
            }
            let view = rest;
            let args = lpo_replay::ReplayArgs {
                file: file.file.unwrap_or_else(default_ring),
                at,
                from,
                to,
                json,
                utc,
                view,
                now_ns: None,
            };
            let mut out = std::io::stdout().lock();
            lpo_replay::replay(&args, &mut out, &mut |w| eprintln!("lpo: {w}"))
                .map_err(|e| Fail(e.exit_code(), e.to_string()))
        }
        Cmd::Export {
            file,
            from,
            to,
            output,
            format,
            streams,
            redact,
            utc,
            quiet,
        } => {
            match format.as_str() {
                "lpo" => {}
                "perfetto" => return export_perfetto(file, from, to, output, utc),
                f => {
                    return Err(usage(format!(
                        "export: unknown --format {f:?}; formats: lpo (a capture), perfetto"
                    )))
                }
            }
            let redact = match redact {
                Some(r) => lpo_replay::redact::Redaction::parse_list(&r).map_err(usage)?,
                None => Vec::new(),
            };
            let args = lpo_replay::export::ExportArgs {
                file: file.file.unwrap_or_else(default_ring),
                out: output,
                from,
                to,
                streams,
                redact,
                utc,
                now_ns: None,
            };
            use std::io::IsTerminal;
            let bar = !quiet && std::io::stderr().is_terminal();
            let mut last = u64::MAX;
            let rep = lpo_replay::export::export(&args, &mut |done, total| {
                let pct = if total == 0 { 100 } else { done * 100 / total };
                if bar && pct != last {
                    last = pct;
                    let w = (pct / 4) as usize;
                    eprint!(
                        "\rexporting [{}{}] {pct:3}%",
                        "#".repeat(w),
                        " ".repeat(25 - w)
                    );
                }
            })
            .map_err(|e| Fail(e.exit_code(), e.to_string()))?;
            if bar {
                eprintln!();
            }
            for b in &rep.skipped_blocks {
                eprintln!("lpo: warning: skipped a damaged block: {b}");
            }
            if !quiet {
                let kept: Vec<String> = rep
                    .streams
                    .iter()
                    .map(|(n, k)| format!("{n} {k}"))
                    .collect();
                eprintln!(
                    "wrote {} ({} bytes; samples: {})",
                    rep.path.display(),
                    rep.bytes,
                    kept.join(", ")
                );
                for r in &rep.redacted {
                    eprintln!("redacted {r}");
                }
            }
            Ok(())
        }
        Cmd::Dump {
            file,
            from,
            to,
            format,
            output,
            fields,
            utc,
            stream,
        } => {
            let args = lpo_replay::DumpArgs {
                file: file.file.unwrap_or_else(default_ring),
                from,
                to,
                stream,
                format: lpo_replay::dump::Format::parse(&format).map_err(usage)?,
                out: output,
                fields,
                utc,
                now_ns: None,
                // SAFETY: isatty only inspects the descriptor.
                stdout_is_terminal: unsafe { libc::isatty(1) } == 1,
            };
            let mut out = std::io::stdout().lock();
            lpo_replay::dump(&args, &mut out, &mut |w| eprintln!("lpo: {w}"))
                .map(|_| ())
                .map_err(|e| Fail(e.exit_code(), e.to_string()))
        }
        Cmd::Info { file, json } => {
            let f = file.file.unwrap_or_else(default_ring);
            let mut out = std::io::stdout().lock();
            lpo_replay::info(&f, json, &mut out).map_err(|e| Fail(e.exit_code(), e.to_string()))
        }
    }
}

/// `lpo export --format perfetto`: the window's kernel trace events as
/// Chrome trace-event JSON.
fn export_perfetto(
    file: FileArg,
    from: String,
    to: String,
    output: PathBuf,
    utc: bool,
) -> Result<(), Fail> {
    let args = lpo_replay::perfetto::ExportArgs {
        file: file.file.unwrap_or_else(default_ring),
        from,
        to,
        utc,
        now_ns: None,
    };
    let mut warn = |w: String| eprintln!("lpo: {w}");
    let fail = |e: lpo_replay::ReplayError| Fail(e.exit_code(), e.to_string());
    if output.as_os_str() == "-" {
        let mut out = std::io::stdout().lock();
        lpo_replay::perfetto::export_perfetto(&args, &mut out, &mut warn).map_err(fail)?;
        return Ok(());
    }
    // Written beside the target and renamed, so a failed export leaves no half file.
    let tmp = output.with_extension("lpo-export.tmp");
    let mut f =
        std::fs::File::create(&tmp).map_err(|e| Fail(1, format!("{}: {e}", tmp.display())))?;
    match lpo_replay::perfetto::export_perfetto(&args, &mut f, &mut warn) {
        Ok(s) => {
            std::fs::rename(&tmp, &output)
                .map_err(|e| Fail(1, format!("{}: {e}", output.display())))?;
            eprintln!(
                "lpo: wrote {}: {} events, {} CPU slices, {} block I/O slices",
                output.display(),
                s.events,
                s.cpu_slices,
                s.io_slices
            );
            Ok(())
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(fail(e))
        }
    }
}

fn main() -> ExitCode {
    // A bug must still end in one line, not a backtrace.
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!("lpo: internal error: {msg}{at} (please report this)");
    }));
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match std::panic::catch_unwind(|| run(cli)) {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(Fail(code, msg))) => {
            // Output closed early (e.g. `| head`) is not an error worth a message.
            if !msg.contains("Broken pipe") {
                eprintln!("lpo: {msg}");
            }
            ExitCode::from(code as u8)
        }
        Err(_) => ExitCode::from(70),
    }
}
