//! `report.html`: one self-contained page. Plotly.js (embedded, so it opens offline), the
//! sweep's numbers as JSON ([`super::data`]) and `report.js`, which draws the charts, links
//! them to the leaderboard and reports any script error in the page itself.

use std::io::Read;

use super::data::ReportData;

/// Plotly.js 3.0.1 (MIT licence, Plotly, Inc.), gzipped: see `assets/README.md`.
const PLOTLY_GZ: &[u8] = include_bytes!("../../assets/plotly-3.0.1.min.js.gz");
/// Draws the page from its data.
const SCRIPT: &str = include_str!("report.js");
/// The page's style.
const STYLE: &str = include_str!("report.css");
/// Runs before anything else: every uncaught error and `console.error` is kept in
/// `window.reportErrors` and shown at the top of the page (by `report.js`, or here if it could
/// not even start), so that neither a reader nor the browser test misses one.
const CATCH_ERRORS: &str = r#"window.reportErrors = [];
window.addEventListener("error", function (e) { window.reportErrors.push(String(e.message || e)); });
window.addEventListener("unhandledrejection", function (e) { window.reportErrors.push("unhandled: " + String(e.reason)); });
(function () { var original = console.error; console.error = function () {
  window.reportErrors.push(Array.prototype.join.call(arguments, " ")); original.apply(console, arguments); }; })();
window.addEventListener("load", function () { setTimeout(function () {
  if (document.body.hasAttribute("data-errors") || !window.reportErrors.length) return;
  var box = document.getElementById("report-errors");
  box.hidden = false;
  box.textContent = "This page could not be drawn:\n" + window.reportErrors.join("\n");
}, 0); });"#;

/// Plotly.js, unpacked once per process (a live report is rendered again and again).
fn plotly_js() -> anyhow::Result<&'static str> {
    static PLOTLY: std::sync::OnceLock<Result<String, String>> = std::sync::OnceLock::new();
    let unpacked = PLOTLY.get_or_init(|| {
        let mut text = String::new();
        flate2::read::GzDecoder::new(PLOTLY_GZ)
            .read_to_string(&mut text)
            .map(|_| text)
            .map_err(|e| format!("unpacking the embedded Plotly.js: {e}"))
    });
    unpacked.as_deref().map_err(|e| anyhow::anyhow!("{e}"))
}

/// JSON that is safe inside a `<script>` element: `<` only occurs inside strings, where
/// `\u003c` reads back the same.
fn script_json(data: &ReportData) -> anyhow::Result<String> {
    Ok(serde_json::to_string(data)?.replace('<', "\\u003c"))
}

/// Escapes text for HTML.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The page. `live` pages reload themselves every 15 s.
pub fn render(data: &ReportData) -> anyhow::Result<String> {
    let refresh = if data.live.is_some() {
        "<meta http-equiv=\"refresh\" content=\"15\">\n"
    } else {
        ""
    };
    Ok(format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
{refresh}<title>sweep report: {name}</title>
<script>{CATCH_ERRORS}</script>
<style>{STYLE}</style>
<script>{plotly}</script>
</head><body>
<div id="report-errors" hidden></div>
<noscript><p>This report draws its charts with JavaScript; the same numbers are in <code>leaderboard.csv</code>.</p></noscript>
<main id="report"></main>
<script type="application/json" id="report-data">{json}</script>
<script>{SCRIPT}</script>
</body></html>
"#,
        name = escape(&data.name),
        plotly = plotly_js()?,
        json = script_json(data)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_plotly_unpacks_to_the_library() {
        let js = plotly_js().unwrap();
        assert!(js.starts_with("/**\n* plotly.js v3.0.1"), "{}", &js[..60]);
        assert!(js.len() > 4_000_000);
    }
}
