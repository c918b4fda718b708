//! Runs one case of the peer suite `n` times, for `callgrind.sh` to count its instructions.
//!
//! Usage: `peers-callgrind <case> <n>`.

use std::process::ExitCode;

use ops_peers::{Case, Peers};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [case, n] = args.as_slice() else {
        eprintln!("usage: peers-callgrind <case> <n>");
        return ExitCode::from(2);
    };
    let case = match Case::parse(case) {
        Ok(case) => case,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let Ok(n) = n.parse::<u64>() else {
        eprintln!("`{n}` is not a number of calls");
        return ExitCode::from(2);
    };
    let mut peers = Peers::new();
    peers.time(case, n);
    eprint!("{}", peers.assert_no_drops());
    ExitCode::SUCCESS
}
