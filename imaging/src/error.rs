//! Why a file is refused at intake, or a slice cannot be shown. Each variant has a
//! stable code and English and Japanese text, like `mailbox::Localized`; the
//! texts name the file's problem, never its content (no patient data).

/// A tag a DICOM file must carry to be placed in a study.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequiredTag {
    SopInstanceUid,
    StudyInstanceUid,
    SeriesInstanceUid,
    Modality,
}

impl RequiredTag {
    pub fn keyword(self) -> &'static str {
        match self {
            Self::SopInstanceUid => "SOP Instance UID (0008,0018)",
            Self::StudyInstanceUid => "Study Instance UID (0020,000D)",
            Self::SeriesInstanceUid => "Series Instance UID (0020,000E)",
            Self::Modality => "Modality (0008,0060)",
        }
    }

    fn ja(self) -> &'static str {
        match self {
            Self::SopInstanceUid => "SOPインスタンスUID (0008,0018)",
            Self::StudyInstanceUid => "検査インスタンスUID (0020,000D)",
            Self::SeriesInstanceUid => "シリーズインスタンスUID (0020,000E)",
            Self::Modality => "モダリティ (0008,0060)",
        }
    }

    fn code(self) -> &'static str {
        match self {
            Self::SopInstanceUid => "dicom_missing_sop_instance_uid",
            Self::StudyInstanceUid => "dicom_missing_study_instance_uid",
            Self::SeriesInstanceUid => "dicom_missing_series_instance_uid",
            Self::Modality => "dicom_missing_modality",
        }
    }
}

/// Active content found in a PDF.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActiveContent {
    JavaScript,
    Launch,
    OpenAction,
    AdditionalActions,
    EmbeddedFile,
    Xfa,
    Multimedia,
    SubmitForm,
    RemoteFile,
}

impl ActiveContent {
    pub fn en(self) -> &'static str {
        match self {
            Self::JavaScript => "JavaScript",
            Self::Launch => "an action that launches a program (/Launch)",
            Self::OpenAction => "an action run when it is opened (/OpenAction)",
            Self::AdditionalActions => "actions run on opening, closing or other events (/AA)",
            Self::EmbeddedFile => "an embedded file or file attachment",
            Self::Xfa => "an XFA form",
            Self::Multimedia => "rich media or renditions that can run code",
            Self::SubmitForm => "a form action that sends or imports data",
            Self::RemoteFile => "a link that opens another file (/GoToR)",
        }
    }

    pub fn ja(self) -> &'static str {
        match self {
            Self::JavaScript => "JavaScript",
            Self::Launch => "プログラムを起動するアクション（/Launch）",
            Self::OpenAction => "開いたときに実行されるアクション（/OpenAction）",
            Self::AdditionalActions => "開閉などのときに実行されるアクション（/AA）",
            Self::EmbeddedFile => "埋め込みファイル・添付ファイル",
            Self::Xfa => "XFAフォーム",
            Self::Multimedia => "コードを実行しうるリッチメディア",
            Self::SubmitForm => "データを送信・取り込むフォームアクション",
            Self::RemoteFile => "別のファイルを開くリンク（/GoToR）",
        }
    }
}

/// Why an uploaded file is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IntakeError {
    #[error("the file is empty")]
    Empty,
    #[error(
        "the file claims to be DICOM (by its name or type) but is not a DICOM file: it lacks the 'DICM' marker after the 128-byte preamble"
    )]
    NotDicom,
    #[error(
        "the DICOM file is truncated or damaged: {what} declares {declared} bytes but only {available} remain"
    )]
    Truncated {
        /// `element (gggg,eeee)`, `element header`, `sequence` …
        what: String,
        declared: u64,
        available: u64,
    },
    #[error("the DICOM file is truncated: it ends inside {what}, which is never closed")]
    Unterminated { what: String },
    #[error(
        "the DICOM file is damaged: element {tag} declares {declared} bytes, more than the {room} left in the sequence item holding it"
    )]
    LengthPastContainer {
        tag: String,
        declared: u64,
        room: u64,
    },
    #[error("the DICOM file nests sequences more than {limit} deep")]
    NestingTooDeep { limit: usize },
    #[error("the DICOM file lacks the {}, which is needed to place it in a study", .0.keyword())]
    Missing(RequiredTag),
    #[error(
        "the pixel data does not match the image geometry: {rows}×{columns}, {frames} frame(s) need {expected} bytes but the file holds {actual}"
    )]
    PixelGeometry {
        rows: u32,
        columns: u32,
        frames: u32,
        expected: u64,
        actual: u64,
    },
    #[error("the DICOM transfer syntax {0} is not supported")]
    UnsupportedTransferSyntax(String),
    #[error("the file is not readable DICOM: {0}")]
    Malformed(String),
    #[error("the file looks like a {format} image but its header cannot be read: {reason}")]
    BadImage {
        format: &'static str,
        reason: String,
    },
    #[error(
        "the DICOM file's 128-byte preamble holds data{}: it must be zeros or a TIFF header, since such a file can also be run as a program (CVE-2019-11687)",
        if *.program { " (a Windows program header)" } else { "" }
    )]
    DicomPreamble { program: bool },
    #[error("data follows the end of the {format} image, where another file can hide")]
    DataAfterEnd { format: &'static str },
    #[error("the {} contains active content: {}", if *.encapsulated { "PDF inside the DICOM file" } else { "PDF" }, .what.en())]
    PdfActiveContent {
        what: ActiveContent,
        /// The PDF is the Encapsulated Document of a DICOM instance.
        encapsulated: bool,
    },
    #[error("the PDF cannot be checked for active content: {0}")]
    PdfUncheckable(String),
    #[error("the PDF's compressed content exceeds {limit_mib} MiB, more than is checked here")]
    PdfTooLarge { limit_mib: u64 },
}

impl IntakeError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Empty => "empty_file",
            Self::NotDicom => "not_dicom",
            Self::Truncated { .. } | Self::Unterminated { .. } => "dicom_truncated",
            Self::LengthPastContainer { .. } => "dicom_length_past_container",
            Self::NestingTooDeep { .. } => "dicom_nesting_too_deep",
            Self::Missing(tag) => tag.code(),
            Self::PixelGeometry { .. } => "dicom_pixel_geometry",
            Self::UnsupportedTransferSyntax(_) => "dicom_unsupported_transfer_syntax",
            Self::Malformed(_) => "dicom_malformed",
            Self::BadImage { .. } => "bad_image",
            Self::DicomPreamble { .. } => "dicom_preamble",
            Self::DataAfterEnd { .. } => "data_after_image_end",
            Self::PdfActiveContent { .. } => "pdf_active_content",
            Self::PdfUncheckable(_) => "pdf_uncheckable",
            Self::PdfTooLarge { .. } => "pdf_too_large",
        }
    }

    pub fn message_en(&self) -> String {
        self.to_string()
    }

    pub fn message_ja(&self) -> String {
        match self {
            Self::Empty => "空のファイルです".into(),
            Self::NotDicom => {
                "DICOMファイルとして送られましたが、DICOMファイルではありません（128バイトのプリアンブルの後に「DICM」がありません）"
                    .into()
            }
            Self::Truncated {
                what,
                declared,
                available,
            } => format!(
                "DICOMファイルが途中で切れているか破損しています（{what} は {declared} バイトと宣言されていますが、残りは {available} バイトです）"
            ),
            Self::Unterminated { .. } => {
                "DICOMファイルが途中で切れています（閉じられていないシーケンスがあります）".into()
            }
            Self::LengthPastContainer { tag, .. } => format!(
                "DICOMファイルが破損しています（要素 {tag} の長さがそれを含むシーケンス項目を超えています）"
            ),
            Self::NestingTooDeep { limit } => {
                format!("DICOMファイルのシーケンスの入れ子が深すぎます（上限 {limit} 段）")
            }
            Self::Missing(tag) => format!(
                "DICOMファイルに{}がないため、検査に振り分けられません",
                tag.ja()
            ),
            Self::PixelGeometry {
                expected, actual, ..
            } => format!(
                "画素データが画像の大きさと一致しません（必要 {expected} バイト、実際 {actual} バイト）"
            ),
            Self::UnsupportedTransferSyntax(ts) => {
                format!("このDICOMの転送構文（{ts}）には対応していません")
            }
            Self::Malformed(_) => "DICOMファイルとして読み取れません".into(),
            Self::BadImage { format, .. } => {
                format!("{format}画像のように見えますが、ヘッダを読み取れません")
            }
            Self::DicomPreamble { program } => format!(
                "DICOMファイルの先頭128バイト（プリアンブル）にデータが入っています{}。プログラムとしても実行できるファイルになりうるため受け付けません（CVE-2019-11687）",
                if *program { "（Windowsプログラムのヘッダ）" } else { "" }
            ),
            Self::DataAfterEnd { format } => format!(
                "{format}画像の終わりの後にデータが続いています。別のファイルを隠せるため受け付けません"
            ),
            Self::PdfActiveContent { what, encapsulated } => format!(
                "{}に{}が含まれているため受け付けません",
                if *encapsulated { "DICOMファイル内のPDF" } else { "PDF" },
                what.ja()
            ),
            Self::PdfUncheckable(_) => {
                "PDFの中身（圧縮されたオブジェクト）を確認できないため受け付けません".into()
            }
            Self::PdfTooLarge { limit_mib } => format!(
                "PDFの圧縮された中身が確認できる上限（{limit_mib} MiB）を超えています"
            ),
        }
    }
}

/// Why a slice cannot be shown (the file itself can still be downloaded).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    #[error("the file cannot be opened as DICOM: {0}")]
    Open(String),
    #[error("the file holds no pixel data")]
    NoPixelData,
    #[error("frame {frame} does not exist; the image has {frames} frame(s)")]
    NoSuchFrame { frame: u32, frames: u32 },
    #[error("this slice cannot be decoded: {0}")]
    Undecodable(String),
    #[error(
        "images in the transfer syntax {0} cannot be decoded here (no decoder without system libraries)"
    )]
    UnsupportedTransferSyntax(String),
    #[error("{0} cannot be decoded here (no decoder without system libraries)")]
    UnsupportedCompression(String),
    #[error("images of photometric interpretation {0} cannot be shown")]
    UnsupportedPhotometric(String),
    #[error("the image is too large to render ({pixels} pixels per frame)")]
    TooLarge { pixels: u64 },
    #[error("the rendered image could not be encoded: {0}")]
    Encode(String),
}

impl RenderError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Open(_) => "dicom_unreadable",
            Self::NoPixelData => "dicom_no_pixel_data",
            Self::NoSuchFrame { .. } => "dicom_no_such_frame",
            Self::Undecodable(_) => "dicom_undecodable",
            Self::UnsupportedTransferSyntax(_) => "dicom_unsupported_transfer_syntax",
            Self::UnsupportedCompression(_) => "dicom_unsupported_compression",
            Self::UnsupportedPhotometric(_) => "dicom_unsupported_photometric",
            Self::TooLarge { .. } => "dicom_too_large",
            Self::Encode(_) => "render_encode",
        }
    }

    pub fn message_en(&self) -> String {
        self.to_string()
    }

    pub fn message_ja(&self) -> String {
        match self {
            Self::Open(_) => "DICOMファイルとして開けません".into(),
            Self::NoPixelData => "このファイルには画像データがありません".into(),
            Self::NoSuchFrame { frame, frames } => {
                format!("フレーム {frame} はありません（全 {frames} フレーム）")
            }
            Self::Undecodable(_) => {
                "この画像は表示できません（復号できない形式です）。ファイルのダウンロードは可能です"
                    .into()
            }
            Self::UnsupportedTransferSyntax(ts) => format!(
                "この画像の圧縮形式（{ts}）は表示に対応していません。ファイルのダウンロードは可能です"
            ),
            Self::UnsupportedCompression(_) => {
                "この画像の圧縮方式は表示に対応していません。ファイルのダウンロードは可能です"
                    .into()
            }
            Self::UnsupportedPhotometric(p) => format!("色空間 {p} の画像は表示できません"),
            Self::TooLarge { .. } => "画像が大きすぎるため表示できません".into(),
            Self::Encode(_) => "画像の変換に失敗しました".into(),
        }
    }
}
