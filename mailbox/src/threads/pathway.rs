//! Regional care pathway templates (地域連携クリティカルパス): stages with named
//! fields, defined in data files under `mailbox/pathways/` and built in.
//!
//! A stage is filled by one facility and handed to the next, whose shared inbox
//! then gets key slots for the whole history of the thread.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FieldSpec {
    pub name: String,
    pub label_ja: String,
    pub label_en: String,
    #[serde(default)]
    pub required: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StageSpec {
    pub key: String,
    pub name_ja: String,
    pub name_en: String,
    pub fields: Vec<FieldSpec>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PathwayTemplate {
    pub id: String,
    pub name_ja: String,
    pub name_en: String,
    pub stages: Vec<StageSpec>,
}

const BUILT_IN: [&str; 2] = [
    include_str!("../../pathways/stroke.toml"),
    include_str!("../../pathways/hip_fracture.toml"),
];

/// The shipped templates. A malformed built-in file is a build defect, caught by
/// the unit test below; at run time it is skipped with a log line.
pub fn templates() -> Vec<PathwayTemplate> {
    BUILT_IN
        .iter()
        .filter_map(|t| match toml::from_str::<PathwayTemplate>(t) {
            Ok(t) => Some(t),
            Err(e) => {
                tracing::error!(error = %e, "built-in pathway template unreadable");
                None
            }
        })
        .collect()
}

pub fn template(id: &str) -> Result<PathwayTemplate> {
    templates()
        .into_iter()
        .find(|t| t.id == id.trim())
        .ok_or_else(|| {
            Error::invalid(
                "template",
                format!("unknown pathway template {id:?}"),
                "連携パスのテンプレートが見つかりません。",
            )
        })
}

impl PathwayTemplate {
    /// Checks filled fields against a stage: every required field present, no
    /// field the stage does not define.
    pub fn check_stage(&self, stage: usize, fields: &[(String, String)]) -> Result<()> {
        let Some(spec) = self.stages.get(stage) else {
            return Err(Error::invalid(
                "stage",
                "the pathway has no further stage",
                "この連携パスは全ての段階が記入済みです。",
            ));
        };
        for (name, _) in fields {
            if !spec.fields.iter().any(|f| &f.name == name) {
                return Err(Error::invalid(
                    "fields",
                    format!("stage {} has no field {name:?}", spec.key),
                    format!("「{}」にない項目が含まれています：{name}", spec.name_ja),
                ));
            }
        }
        for f in spec.fields.iter().filter(|f| f.required) {
            let filled = fields
                .iter()
                .any(|(n, v)| n == &f.name && !v.trim().is_empty());
            if !filled {
                return Err(Error::invalid(
                    "fields",
                    format!("stage {} needs the field {}", spec.key, f.name),
                    format!(
                        "「{}」の必須項目「{}」を入力してください。",
                        spec.name_ja, f.label_ja
                    ),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stroke_and_hip_fracture_templates_load_with_three_stages() {
        let all = templates();
        assert_eq!(all.len(), BUILT_IN.len(), "every built-in file parses");
        for id in ["stroke", "hip_fracture"] {
            let t = template(id).unwrap();
            assert_eq!(t.stages.len(), 3);
            assert!(t.stages.iter().all(|s| s.fields.iter().any(|f| f.required)));
        }
    }

    #[test]
    fn a_stage_needs_its_required_fields_and_nothing_foreign() {
        let t = template("hip_fracture").unwrap();
        let full: Vec<(String, String)> = t.stages[1]
            .fields
            .iter()
            .map(|f| (f.name.clone(), "x".into()))
            .collect();
        assert!(t.check_stage(1, &full).is_ok());
        let missing = &full[1..];
        let e = t.check_stage(1, missing).unwrap_err().to_string();
        assert!(e.contains("walking_admission"), "{e}");
        let mut foreign = full.clone();
        foreign.push(("patient_blood_type".into(), "A".into()));
        assert!(t.check_stage(1, &foreign).is_err());
        assert!(t.check_stage(3, &full).is_err());
    }
}
