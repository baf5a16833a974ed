//! Lines of text laid out onto A4 pages and written as a PDF in IPAex Gothic,
//! embedding only the glyphs used.

use std::sync::LazyLock;

use krilla::Document;
use krilla::geom::Point;
use krilla::page::PageSettings;
use krilla::text::{Font, TextDirection};

use crate::{Error, Result};

static FONT_BYTES: &[u8] = include_bytes!("../fonts/ipaexg.ttf");

static FONT: LazyLock<Option<Font>> =
    LazyLock::new(|| Font::new(krilla::Data::from(FONT_BYTES.to_vec()), 0));

const WIDTH: f32 = 595.0;
const HEIGHT: f32 = 842.0;
const MARGIN: f32 = 56.0;
pub(crate) const BODY: f32 = 10.5;

/// One line of text placed on a page.
pub(crate) struct Run {
    x: f32,
    y: f32,
    size: f32,
    text: String,
}

/// Lines laid out onto A4 pages; rendered at the end.
pub(crate) struct Sheet {
    pub(crate) pages: Vec<Vec<Run>>,
    y: f32,
}

/// A rough advance: full-width glyphs are one em, Latin about 0.6 em in IPAex
/// Gothic. Used only to break lines, so erring wide is harmless.
fn advance(c: char, size: f32) -> f32 {
    if c.is_ascii() { size * 0.6 } else { size }
}

fn width(s: &str, size: f32) -> f32 {
    s.chars().map(|c| advance(c, size)).sum()
}

/// Where values start beside their labels.
const VALUE_INDENT: f32 = 150.0;

fn clean(s: &str) -> String {
    s.chars()
        .map(|c| if c == '\t' { ' ' } else { c })
        .filter(|c| !c.is_control())
        .collect()
}

impl Sheet {
    pub(crate) fn new() -> Self {
        Self {
            pages: vec![Vec::new()],
            y: MARGIN,
        }
    }

    fn ensure(&mut self, height: f32) {
        if self.y + height > HEIGHT - MARGIN {
            self.pages.push(Vec::new());
            self.y = MARGIN;
        }
    }

    fn place(&mut self, x: f32, size: f32, text: String) {
        self.ensure(size * 1.6);
        self.y += size * 1.25;
        let y = self.y;
        if let Some(page) = self.pages.last_mut() {
            page.push(Run { x, y, size, text });
        }
        self.y += size * 0.35;
    }

    /// Flowing text at `indent`, broken at the right margin and at newlines.
    pub(crate) fn text_at(&mut self, indent: f32, text: &str, size: f32) {
        let max = WIDTH - MARGIN - (MARGIN + indent);
        for para in text.split('\n') {
            let para = clean(para);
            if para.is_empty() {
                self.y += size * 0.8;
                continue;
            }
            let mut line = String::new();
            let mut w = 0.0;
            for c in para.chars() {
                let a = advance(c, size);
                if w + a > max && !line.is_empty() {
                    // Latin words are not split: carry the word to the next line.
                    let carry = match line.rfind(' ') {
                        Some(p)
                            if c.is_ascii_graphic()
                                && line[p + 1..].chars().all(|x| x.is_ascii_graphic()) =>
                        {
                            let tail = line[p + 1..].to_string();
                            line.truncate(p);
                            tail
                        }
                        _ => String::new(),
                    };
                    self.place(MARGIN + indent, size, std::mem::take(&mut line));
                    w = width(&carry, size);
                    line = carry;
                }
                line.push(c);
                w += a;
            }
            if !line.is_empty() {
                self.place(MARGIN + indent, size, line);
            }
        }
    }

    pub(crate) fn text(&mut self, text: &str, size: f32) {
        self.text_at(0.0, text, size);
    }

    pub(crate) fn title(&mut self, ja: &str, en: &str) {
        self.text(ja, 18.0);
        self.text(en, 9.0);
        self.gap(8.0);
    }

    pub(crate) fn heading(&mut self, text: &str) {
        self.gap(6.0);
        self.text(text, 12.0);
    }

    /// `label`: `value`, the value indented under a long label.
    pub(crate) fn pair(&mut self, label: &str, value: &str) {
        let label = format!("{label}：");
        self.text(&label, BODY);
        // The value beside a label that fits, else on the next line.
        if width(&label, BODY) < VALUE_INDENT - 6.0 {
            self.y -= BODY * 1.6;
        }
        self.text_at(
            VALUE_INDENT,
            if value.is_empty() { "—" } else { value },
            BODY,
        );
    }

    pub(crate) fn gap(&mut self, pts: f32) {
        self.y += pts;
    }

    pub(crate) fn render(self, title: &str) -> Result<Vec<u8>> {
        let font = FONT.clone().ok_or(Error::Font)?;
        let mut document = Document::new();
        document.set_metadata(
            krilla::metadata::Metadata::new()
                .title(title.to_string())
                .producer("Renkei".to_string()),
        );
        let total = self.pages.len();
        let settings = PageSettings::from_wh(WIDTH, HEIGHT).ok_or(Error::PageSize)?;
        for (n, runs) in self.pages.into_iter().enumerate() {
            let mut page = document.start_page_with(settings.clone());
            let mut surface = page.surface();
            for r in runs {
                surface.draw_text(
                    Point::from_xy(r.x, r.y),
                    font.clone(),
                    r.size,
                    &r.text,
                    false,
                    TextDirection::Auto,
                );
            }
            surface.draw_text(
                Point::from_xy(MARGIN, HEIGHT - MARGIN / 2.0),
                font.clone(),
                8.0,
                &format!("Renkei — {title} — {} / {total}", n + 1),
                false,
                TextDirection::Auto,
            );
            surface.finish();
            page.finish();
        }
        document
            .finish()
            .map_err(|e| Error::Write(format!("{e:?}")))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn long_text_flows_onto_more_pages() {
        let mut s = Sheet::new();
        s.text(&"所見".repeat(5000), BODY);
        assert!(s.pages.len() > 2);
        let pdf = s.render("test").unwrap();
        assert!(pdf.starts_with(b"%PDF-"));
        // Subset, not the whole 6 MB font.
        assert!(pdf.len() < 400_000, "{}", pdf.len());
    }
}
