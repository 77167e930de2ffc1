//! Renders the document model as one self-contained HTML page (`index.html`): inline
//! CSS, images by relative path, no JavaScript, nothing fetched from the network.
//! Markup comes from a fixed template and a few element helpers; every piece of
//! text from the run passes through [`esc`].

use super::{Block, Cell, Span, Table, Tone};

const TEMPLATE: &str = r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{title}}</title>
<style>
{{css}}
</style>
</head>
<body>
<main>
<h1>{{title}}</h1>
{{body}}
</main>
</body>
</html>
"#;

const CSS: &str = "
body { margin: 0; background: #f6f7f9; color: #222; font: 15px/1.5 system-ui, -apple-system, 'Segoe UI', Roboto, 'DejaVu Sans', sans-serif; }
main { max-width: 1400px; margin: 0 auto; padding: 24px 32px 48px; background: #fff; }
h1 { font-size: 28px; margin: 8px 0 4px; }
h2 { font-size: 21px; margin: 36px 0 8px; padding-bottom: 4px; border-bottom: 2px solid #e4e6ea; }
h3 { font-size: 16px; margin: 20px 0 6px; color: #444; }
p { margin: 6px 0; }
code { font: 13px ui-monospace, 'DejaVu Sans Mono', monospace; background: #f0f1f3; padding: 1px 4px; border-radius: 3px; }
table { border-collapse: collapse; margin: 8px 0 12px; font-size: 14px; }
th, td { border: 1px solid #e1e3e8; padding: 5px 10px; vertical-align: top; }
th { background: #f2f4f7; text-align: left; font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.good { color: #17692f; }
.bad { color: #b3121b; font-weight: 600; }
.muted { color: #777; }
.strong { font-weight: 600; }
dl { margin: 6px 0; font-size: 14px; }
dt { font-weight: 600; margin-top: 6px; }
dd { margin: 0 0 0 18px; color: #444; }
ul { margin: 6px 0; padding-left: 22px; }
figure { margin: 18px 0 28px; }
figure img { width: 100%; height: auto; border: 1px solid #e4e6ea; }
figcaption { color: #555; font-size: 14px; margin-top: 4px; }
";

pub fn render(title: &str, blocks: &[Block]) -> String {
    let body: Vec<String> = blocks.iter().map(block).collect();
    TEMPLATE
        .replace("{{css}}", CSS.trim())
        .replace("{{title}}", &esc(title))
        .replace("{{body}}", &body.join("\n"))
}

/// Escape text for HTML element content and double-quoted attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `<tag attr="value"...>inner</tag>`; attribute values are escaped, `inner` is
/// already markup.
fn el(tag: &str, attrs: &[(&str, &str)], inner: &str) -> String {
    let attrs: String = attrs
        .iter()
        .map(|(k, v)| format!(" {k}=\"{}\"", esc(v)))
        .collect();
    format!("<{tag}{attrs}>{inner}</{tag}>")
}

fn block(b: &Block) -> String {
    match b {
        Block::Heading(level, text) => el(&format!("h{}", level.clamp(&2, &4)), &[], &esc(text)),
        Block::Para(spans) => el("p", &[], &spans_html(spans)),
        Block::Table(t) => table(t),
        Block::Definitions(items) => {
            let inner: String = items
                .iter()
                .map(|(term, def)| el("dt", &[], &esc(term)) + &el("dd", &[], &spans_html(def)))
                .collect();
            el("dl", &[], &inner)
        }
        Block::Bullets(items) => {
            let inner: String = items
                .iter()
                .map(|s| el("li", &[], &spans_html(s)))
                .collect();
            el("ul", &[], &inner)
        }
        Block::Figure {
            src,
            alt,
            caption,
            width,
            height,
        } => {
            let (w, h) = (width.to_string(), height.to_string());
            let img = format!(
                "<img src=\"{}\" alt=\"{}\" width=\"{w}\" height=\"{h}\">",
                esc(src),
                esc(alt)
            );
            el(
                "figure",
                &[],
                &(img + &el("figcaption", &[], &esc(caption))),
            )
        }
    }
}

fn tone_class(tone: Tone) -> Option<&'static str> {
    match tone {
        Tone::Plain => None,
        Tone::Good => Some("good"),
        Tone::Bad => Some("bad"),
        Tone::Muted => Some("muted"),
        Tone::Strong => Some("strong"),
    }
}

fn spans_html(spans: &[Span]) -> String {
    spans
        .iter()
        .map(|s| match s {
            Span::Text(t) => esc(t),
            Span::Strong(t) => el("strong", &[], &esc(t)),
            Span::Code(t) => el("code", &[], &esc(t)),
            Span::Toned(tone, t) => match tone_class(*tone) {
                Some(class) => el("span", &[("class", class)], &esc(t)),
                None => esc(t),
            },
        })
        .collect()
}

fn table(t: &Table) -> String {
    let cell = |tag: &str, c: &Cell| {
        let class = [c.numeric.then_some("num"), tone_class(c.tone)]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        let attrs: &[(&str, &str)] = if class.is_empty() {
            &[]
        } else {
            &[("class", &class)]
        };
        el(tag, attrs, &esc(&c.text))
    };
    let head: String = t.head.iter().map(|c| cell("th", c)).collect();
    let rows: String = t
        .rows
        .iter()
        .map(|r| {
            el(
                "tr",
                &[],
                &r.iter().map(|c| cell("td", c)).collect::<String>(),
            )
        })
        .collect();
    el(
        "table",
        &[],
        &(el("thead", &[], &el("tr", &[], &head)) + &el("tbody", &[], &rows)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_from_the_run_is_escaped() {
        let page = render(
            "a <b> & \"c\"",
            &[Block::Para(vec![Span::Code("<script>".into())])],
        );
        assert!(
            page.contains("<title>a &lt;b&gt; &amp; &quot;c&quot;</title>"),
            "{page}"
        );
        assert!(page.contains("<code>&lt;script&gt;</code>"), "{page}");
        assert!(!page.contains("<script>"), "{page}");
    }
}
