//! Grouping instances into studies and series, as a thread shows them:
//! modality, study date, body part, series descriptions and image counts.

use serde::{Deserialize, Serialize};

use crate::meta::DicomMeta;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceRef {
    /// Index of the attachment that holds the instance.
    pub attachment: usize,
    pub instance_number: Option<i64>,
    pub frames: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Series {
    pub series_instance_uid: String,
    pub series_number: Option<i64>,
    pub modality: String,
    pub body_part: String,
    pub description: String,
    /// Ordered by instance number, then by attachment.
    pub instances: Vec<InstanceRef>,
}

impl Series {
    pub fn image_count(&self) -> usize {
        self.instances.len()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Study {
    pub study_instance_uid: String,
    pub study_date: Option<String>,
    pub description: String,
    /// Ordered by series number.
    pub series: Vec<Series>,
}

impl Study {
    pub fn image_count(&self) -> usize {
        self.series.iter().map(Series::image_count).sum()
    }

    /// Distinct modalities in series order.
    pub fn modalities(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for s in &self.series {
            if !out.contains(&s.modality.as_str()) {
                out.push(&s.modality);
            }
        }
        out
    }

    pub fn body_parts(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for s in &self.series {
            if !s.body_part.is_empty() && !out.contains(&s.body_part.as_str()) {
                out.push(&s.body_part);
            }
        }
        out
    }
}

/// Groups `(attachment index, metadata)` pairs; studies keep the order in
/// which their first file came.
pub fn group<'a>(files: impl IntoIterator<Item = (usize, &'a DicomMeta)>) -> Vec<Study> {
    let mut studies: Vec<Study> = Vec::new();
    for (attachment, m) in files {
        let study = match studies
            .iter_mut()
            .position(|s| s.study_instance_uid == m.study_instance_uid)
        {
            Some(i) => &mut studies[i],
            None => {
                studies.push(Study {
                    study_instance_uid: m.study_instance_uid.clone(),
                    study_date: m.study_date.clone(),
                    description: m.study_description.clone(),
                    series: Vec::new(),
                });
                let last = studies.len() - 1;
                &mut studies[last]
            }
        };
        let series = match study
            .series
            .iter()
            .position(|s| s.series_instance_uid == m.series_instance_uid)
        {
            Some(i) => &mut study.series[i],
            None => {
                study.series.push(Series {
                    series_instance_uid: m.series_instance_uid.clone(),
                    series_number: m.series_number,
                    modality: m.modality.clone(),
                    body_part: m.body_part.clone(),
                    description: m.series_description.clone(),
                    instances: Vec::new(),
                });
                let last = study.series.len() - 1;
                &mut study.series[last]
            }
        };
        series.instances.push(InstanceRef {
            attachment,
            instance_number: m.instance_number,
            frames: m.frames,
        });
    }
    for study in &mut studies {
        study
            .series
            .sort_by_key(|s| (s.series_number.is_none(), s.series_number));
        for s in &mut study.series {
            s.instances
                .sort_by_key(|i| (i.instance_number.is_none(), i.instance_number, i.attachment));
        }
    }
    studies
}
