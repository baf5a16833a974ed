//! PDF exports: reading reports, referral and reply letters and any other text
//! item, credential letters, billing statements and deletion receipts; and QR
//! codes (SVG) for authenticator enrolment. Plain data in, bytes out: the
//! domain (`mailbox::pdf`) maps its types onto these.
//!
//! Text files and prints leave Renkei only as PDF (FAQ: 文字情報は全てPDF形式).
//! Japanese text is set in IPAex Gothic, compiled into the binary (`fonts/`),
//! and each PDF embeds only the subset of glyphs it uses (krilla subsets and
//! writes a ToUnicode map, so the text can be searched and extracted). A4
//! portrait, simple flowing layout with page numbers.

mod documents;
mod sheet;

pub use documents::{
    CredentialLetter, DeletedItem, DeletionReceipt, ItemPrint, StatementLine, StatementPrint,
    billing_statement, credential_letter, deletion_receipt, item, item_title,
};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the built-in PDF font cannot be read")]
    Font,
    #[error("page size")]
    PageSize,
    #[error("writing the PDF: {0}")]
    Write(String),
    #[error("QR code: {0}")]
    Qr(String),
}

pub type Result<T> = std::result::Result<T, Error>;

/// `data` as a QR code in SVG, at least `min_size` pixels square.
pub fn qr_svg(data: &[u8], min_size: u32) -> Result<String> {
    let qr = qrcode::QrCode::new(data).map_err(|e| Error::Qr(e.to_string()))?;
    Ok(qr
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(min_size, min_size)
        .build())
}
