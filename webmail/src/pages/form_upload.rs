//! A page's multipart form as it arrives: text fields read with a limit,
//! files staged encrypted until the whole form is known. Shared by the
//! compose page and the thread's step forms.

use mailbox::Error;

/// The longest text field taken from a form.
const TEXT_LIMIT: usize = 256 * 1024;

pub(crate) fn bad_form(reason: impl Into<String>) -> Error {
    Error::invalid(
        "upload",
        reason,
        "送信内容を最後まで受け取れませんでした。もう一度送信してください。",
    )
}

/// The media type of an uploaded file: as declared, else by its extension.
pub(crate) fn media_type_of(declared: &str, name: &str) -> String {
    let declared = declared.trim();
    if !declared.is_empty() && declared != "application/octet-stream" {
        return declared.to_string();
    }
    let lower = name.to_ascii_lowercase();
    let by_name = [
        (".dcm", "application/dicom"),
        (".jpg", "image/jpeg"),
        (".jpeg", "image/jpeg"),
        (".png", "image/png"),
        (".pdf", "application/pdf"),
    ]
    .into_iter()
    .find(|(ext, _)| lower.ends_with(ext))
    .map(|(_, t)| t);
    by_name.unwrap_or("application/octet-stream").to_string()
}

/// A plain form's file part, staged (see [`staged`]); `None` for the one
/// nameless, empty part an empty file input sends.
pub(crate) async fn stage_file(
    field: &mut axum::extract::multipart::Field<'_>,
) -> Result<Option<staged::Staged>, Error> {
    let file_name = field.file_name().unwrap_or_default().to_string();
    let media_type = field.content_type().unwrap_or_default().to_string();
    let mut writer = staged::Writer::new().map_err(|e| bad_form(e.to_string()))?;
    let mut size = 0u64;
    while let Some(chunk) = field
        .chunk()
        .await
        .map_err(|e| bad_form(format!("upload interrupted: {e}")))?
    {
        size += chunk.len() as u64;
        tokio::task::block_in_place(|| writer.write(&chunk))
            .map_err(|e| bad_form(e.to_string()))?;
    }
    if file_name.is_empty() && size == 0 {
        return Ok(None);
    }
    let reader =
        tokio::task::block_in_place(|| writer.finish()).map_err(|e| bad_form(e.to_string()))?;
    Ok(Some(staged::Staged {
        media_type: media_type_of(&media_type, &file_name),
        name: file_name,
        reader,
    }))
}

pub(crate) async fn read_text(
    field: &mut axum::extract::multipart::Field<'_>,
) -> Result<String, Error> {
    let mut bytes = Vec::new();
    while let Some(chunk) = field
        .chunk()
        .await
        .map_err(|e| bad_form(format!("multipart: {e}")))?
    {
        if bytes.len() + chunk.len() > TEXT_LIMIT {
            return Err(Error::invalid(
                "form",
                "a text field is longer than 256 KiB",
                "入力欄の文字数が多すぎます（256KiBまで）。",
            ));
        }
        bytes.extend_from_slice(&chunk);
    }
    String::from_utf8(bytes).map_err(|_| bad_form("a text field is not UTF-8"))
}

pub(crate) mod staged {
    //! Files of a form sent without JavaScript, held until every name is
    //! known. Each file streams to an anonymous temp file (unlinked from the
    //! start, so nothing is left after a crash), encrypted by the staging
    //! cipher of `renkei-crypto` under a random key that lives only in this
    //! request's memory.

    use std::fs::File;
    use std::io::{self, BufReader, BufWriter, Read, Seek, Write};

    use renkei_crypto::staging::{StagingKey, StagingReader, StagingWriter};

    pub struct Staged {
        pub name: String,
        pub media_type: String,
        pub reader: Reader,
    }

    impl Staged {
        pub fn into_attachment(self) -> mailbox::postroom::OutgoingAttachment {
            mailbox::postroom::OutgoingAttachment {
                name: self.name,
                media_type: self.media_type,
                source: Box::new(self.reader),
            }
        }
    }

    pub struct Writer {
        key: StagingKey,
        inner: StagingWriter<BufWriter<File>>,
    }

    impl Writer {
        pub fn new() -> io::Result<Self> {
            let key = StagingKey::random();
            let out = BufWriter::with_capacity(
                StagingReader::<File>::buffer_capacity(),
                tempfile::tempfile()?,
            );
            Ok(Self {
                inner: StagingWriter::new(key.clone(), out),
                key,
            })
        }

        pub fn write(&mut self, data: &[u8]) -> io::Result<()> {
            self.inner.write_all(data)
        }

        pub fn finish(self) -> io::Result<Reader> {
            let mut file = self
                .inner
                .finish()?
                .into_inner()
                .map_err(|e| e.into_error())?;
            file.rewind()?;
            let input = BufReader::with_capacity(StagingReader::<File>::buffer_capacity(), file);
            Ok(Reader(StagingReader::new(self.key, input)))
        }
    }

    /// A staged file read back and checked chunk by chunk.
    pub struct Reader(StagingReader<BufReader<File>>);

    impl Read for Reader {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.0.read(buf)
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn staged_files_read_back_exactly_across_chunks() {
            for len in [
                0,
                1,
                renkei_crypto::staging::CHUNK,
                3 * renkei_crypto::staging::CHUNK + 5,
            ] {
                let data: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
                let mut w = Writer::new().unwrap();
                for piece in data.chunks(10_000) {
                    w.write(piece).unwrap();
                }
                let mut back = Vec::new();
                w.finish().unwrap().read_to_end(&mut back).unwrap();
                assert_eq!(back, data, "length {len}");
            }
        }
    }
}
