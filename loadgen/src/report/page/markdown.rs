//! Renders the document model as GitHub-flavoured Markdown (`report.md`).

use super::{Block, Cell, Span, Table, Tone};

pub fn render(title: &str, blocks: &[Block]) -> String {
    let mut parts = vec![format!("# {title}")];
    parts.extend(blocks.iter().map(block));
    parts.join("\n\n") + "\n"
}

fn block(b: &Block) -> String {
    match b {
        Block::Heading(level, text) => format!("{} {text}", "#".repeat(usize::from(*level))),
        Block::Para(spans) => line(spans),
        Block::Table(t) => table(t),
        Block::Definitions(items) => items
            .iter()
            .map(|(term, def)| format!("- **{}**: {}", escape(term), line(def)))
            .collect::<Vec<_>>()
            .join("\n"),
        Block::Bullets(items) => items
            .iter()
            .map(|spans| format!("- {}", line(spans)))
            .collect::<Vec<_>>()
            .join("\n"),
        Block::Figure {
            src, alt, caption, ..
        } => format!("![{}]({src})\n\n*{}*", escape(alt), escape(caption)),
    }
}

fn line(spans: &[Span]) -> String {
    spans
        .iter()
        .map(|s| match s {
            Span::Text(t) => escape(t),
            Span::Strong(t) => format!("**{}**", escape(t)),
            Span::Code(t) => format!("`{t}`"),
            Span::Toned(Tone::Bad | Tone::Strong, t) => format!("**{}**", escape(t)),
            Span::Toned(_, t) => escape(t),
        })
        .collect()
}

fn table(t: &Table) -> String {
    let row = |cells: &[Cell]| {
        let inner: Vec<String> = cells.iter().map(cell).collect();
        format!("| {} |", inner.join(" | "))
    };
    let rule: Vec<&str> = t
        .head
        .iter()
        .map(|c| if c.numeric { "---:" } else { "---" })
        .collect();
    let mut lines = vec![row(&t.head), format!("| {} |", rule.join(" | "))];
    lines.extend(t.rows.iter().map(|r| row(r)));
    lines.join("\n")
}

fn cell(c: &Cell) -> String {
    let text = escape(&c.text).replace('|', "\\|");
    if matches!(c.tone, Tone::Bad | Tone::Strong) {
        format!("**{text}**")
    } else {
        text
    }
}

/// Keep text literal: Markdown would otherwise read `*`, `<` or `[` as markup.
/// Underscores stay as they are: GitHub does not read them inside words.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '<' | '>' | '[' | ']' | '`' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
