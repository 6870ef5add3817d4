//! A process that tracks events with the durable spool on, for the kill -9
//! test (`tests/tests/spool_crash.rs`).
//!
//! `spool_child <capture url> <api key> <spool dir> <first> <end> <final>`
//! tracks `track` events with quantities `first..end`, printing one line
//! before each (`S <i>`), and, from a second thread, the number of this
//! run's events committed to the spool whenever it changes (`C <n>`). Its
//! first line is `R <recovered>`, the events a previous run left. Then,
//! with `final` = `1`, it shuts down (delivering everything) and prints
//! `DONE <drained> <left in spool>`; otherwise it prints `END` and waits to
//! be killed.
//!
//! Every line is written before what it announces happens, so whatever the
//! parent reads after a `SIGKILL` is true.

use std::time::Duration;

use flagwire::events::SpoolConfig;
use flagwire::schematic::Client;
use flagwire_core::events::TrackBody;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [capture, key, dir, first, end, last] = args.as_slice() else {
        return Err(
            "usage: spool_child <capture url> <api key> <spool dir> <first> <end> <final>".into(),
        );
    };
    let (first, end): (i64, i64) = (first.parse()?, end.parse()?);
    let client = Client::builder(key.as_str())
        .capture_url(capture.as_str())
        .events(|e| {
            e.flush_interval(Duration::from_millis(50))
                .retry_backoff(Duration::from_millis(5), Duration::from_millis(50))
                .spool(SpoolConfig::new(dir.as_str()).commit_interval(Duration::from_millis(20)))
        })
        .build_blocking()?;
    println!("R {}", client.event_stats().buffer.recovered);
    let watcher = client.clone();
    std::thread::spawn(move || {
        let mut last = 0;
        loop {
            let committed = watcher.event_stats().buffer.committed;
            if committed != last {
                println!("C {committed}");
                last = committed;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    });
    for i in first..end {
        println!("S {i}");
        let body = TrackBody::builder("api-call")
            .company([("id", "acme")])
            .quantity(i)
            .build()?;
        client.track(body)?;
    }
    if last == "1" {
        let report = client.shutdown(Duration::from_secs(120))?;
        println!("DONE {} {}", report.drained, report.left_in_spool);
        return Ok(());
    }
    println!("END");
    loop {
        std::thread::sleep(Duration::from_secs(60));
    }
}
