//! The report in a real browser: headless Chromium loads `report.html` offline, and every
//! chart must draw without a script error; selecting a trial reaches every chart.

mod common;

use common::*;

/// The text of the element with `id` in a DOM (its tags dropped).
fn text_of(dom: &str, id: &str) -> String {
    let start = dom
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("#{id} in the page"));
    let rest = &dom[start..];
    let body = &rest[rest.find('>').unwrap() + 1..];
    let mut out = String::new();
    let mut in_tag = false;
    for c in body[..body.find("</").unwrap_or(body.len())].chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

#[test]
fn a_command_sweep_with_pruned_and_failed_trials_draws_every_chart() {
    let dir = scratch("report-mixed");
    let root = mixed_sweep(&dir);
    let Some(page) = render_report(&root, "") else {
        return;
    };
    for chart in ["history", "curves", "parallel", "slice-lr"] {
        assert!(
            page.charts.iter().any(|c| c == chart),
            "{chart}: {:?}",
            page.charts
        );
    }
    assert!(
        !page.charts.iter().any(|c| c == "confusion"),
        "a command sweep has no confusion matrix"
    );
    // The legend counts each kind of trial; ASHA's stop is marked on the curves.
    for legend in [
        "completed (1)",
        "pruned (1)",
        "failed (1)",
        "stopped by the pruner",
    ] {
        assert!(page.dom.contains(legend), "{legend}");
    }
    assert_eq!(text_of(&page.dom, "row-count"), "showing 3 of 3 trials");
    assert!(
        !page.dom.contains("test_acc_at_best"),
        "no explanation of columns a command sweep does not have"
    );
}

#[test]
fn a_tpe_sweep_draws_its_history_importance_slices_and_contour_and_a_link_selects_a_trial() {
    let dir = scratch("report-tpe");
    let s = command_spec(
        &dir,
        "tpe",
        r#""--lr", "{lr}", "--epochs", "2", "--sleep", "{sleep}", "--report", "{report}""#,
        "",
        "[search]\nmethod = \"tpe\"\nsamples = 14\nstartup = 5\n[search.params]\nlr = { log_uniform = [1e-4, 1.0] }\nsleep = { uniform = [0.0, 0.01] }\nreport = [\"json\", \"csv\"]",
    );
    let spec = std::fs::read_to_string(&s).unwrap().replace(
        "metric = \"val_acc\"",
        "metric = \"val_acc\"\ndescription = \"TPE on the fake trainer <3 params>\"",
    );
    std::fs::write(&s, spec).unwrap();
    let results = dir.join("results");
    let o = run_sweep(&s, &results, &[]);
    assert!(o.status.success(), "{}", text(&o));
    let root = results.join("tpe");
    let best = csv_rows(&root.join("leaderboard.csv"))[1][1].clone();
    let Some(page) = render_report(
        &root,
        &format!("#trial={best}&metric=train_loss&sort=lr:desc"),
    ) else {
        return;
    };
    for chart in [
        "history",
        "curves",
        "parallel",
        "importance",
        "slice-lr",
        "slice-sleep",
        "slice-report",
        "contour",
    ] {
        assert!(
            page.charts.iter().any(|c| c == chart),
            "{chart}: {:?}",
            page.charts
        );
    }
    assert!(
        page.dom.contains("random start-up (5)"),
        "start-up trials are marked"
    );
    assert!(page.dom.contains("guided by TPE (9)"));
    // Log ticks as people write them, from the spec's log-uniform lr.
    for tick in [">1e-4<", ">0.001<", ">0.01<", ">0.1<"] {
        assert!(page.dom.contains(tick), "tick {tick}");
    }
    assert!(
        page.dom
            .contains("TPE on the fake trainer &lt;3 params&gt;"),
        "the description, as text"
    );
    // The link selected the winner: its row, and the bar that describes it.
    assert_eq!(page.body_attribute("data-selected"), Some(best.clone()));
    assert!(page.dom.contains(&format!(
        "class=\"status-completed best selected\" data-trial=\"{best}\""
    )));
    assert!(text_of(&page.dom, "selection").contains(&best));
    // ... drew the curves of another metric, and sorted the leaderboard by lr, largest first.
    assert!(page.dom.contains("data-metric=\"train_loss\""));
    assert!(
        page.dom.contains("<th class=\"sorted-desc\">lr</th>"),
        "lr sorted, largest first"
    );
    let lrs: Vec<f64> = csv_rows(&root.join("leaderboard.csv"))[1..]
        .iter()
        .map(|r| r[5].parse().unwrap())
        .collect();
    let largest = lrs.iter().copied().fold(f64::MIN, f64::max);
    let first_row = page.dom.split("<tbody>").nth(1).unwrap();
    let first_id = first_row
        .split("data-trial=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let rows = csv_rows(&root.join("leaderboard.csv"));
    let first_lr: f64 = rows.iter().find(|r| r[1] == first_id).unwrap()[5]
        .parse()
        .unwrap();
    assert_eq!(first_lr, largest, "the first row has the largest lr");
}
