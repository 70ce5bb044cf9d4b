//! The executor interface against real trial processes: start trials, follow their events, stop
//! one of them by id while the other runs to its end.

mod common;

use common::*;
use sweep::events::TrialEvent;
use sweep::exec::local::{LocalExecutor, LocalOptions};
use sweep::exec::slots::DeviceSpec;
use sweep::exec::{ExecEvent, Executor};
use sweep::trial::{StopReason, TrialStatus};

#[test]
fn stopping_one_of_two_local_trials_leaves_the_other_to_finish() {
    let dir = scratch("exec-stop-one");
    let mut exec = LocalExecutor::new(LocalOptions {
        devices: vec![DeviceSpec::Cpu],
        per_device: 2,
        threads_per_trial: 1,
        exe: env!("CARGO_BIN_EXE_sweep").into(),
    })
    .unwrap();
    assert!(exec.room_for(None));
    exec.start(vec![prepared_trial(&dir, "long", 200)]).unwrap();
    exec.start(vec![prepared_trial(&dir, "short", 3)]).unwrap();
    assert!(!exec.room_for(None), "both slots are taken");
    let mut short_epochs = 0;
    let ended = drive(&mut exec, 2, |exec, e| {
        if let ExecEvent::Progress(TrialEvent::Epoch { trial, row, .. }) = e {
            if trial == "long" && row.epoch == 1 {
                exec.stop("long", StopReason::Pruned).unwrap();
            }
            if trial == "short" {
                short_epochs = row.epoch;
            }
        }
    });
    assert_eq!(
        ended["long"].status,
        TrialStatus::Pruned,
        "{:?}",
        ended["long"]
    );
    assert_eq!(
        ended["short"].status,
        TrialStatus::Completed,
        "{:?}",
        ended["short"]
    );
    assert_eq!(short_epochs, 3);
    let long = summary(&dir.join("long"));
    assert_eq!(long["status"], "pruned");
    assert!(long["epochs_run"].as_u64().unwrap() < 200, "{long}");
    assert!(exec.room_for(None), "the slots are free again");
}
