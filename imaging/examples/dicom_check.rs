//! Runs intake over files and prints one line per file: what it is or why it is
//! refused. `--render OUT_DIR` also renders frame 0 of each accepted DICOM file.
//! Used by `bench/dicom` for the metadata-extraction figure.

use std::path::PathBuf;
use std::time::Instant;

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let render_to = args.iter().position(|a| a == "--render").map(|i| {
        let dir = PathBuf::from(args.get(i + 1).cloned().unwrap_or_default());
        args.drain(i..(i + 2).min(args.len()));
        dir
    });
    let quiet = args.iter().any(|a| a == "--quiet");
    args.retain(|a| a != "--quiet");
    let start = Instant::now();
    let (mut ok, mut refused) = (0u64, 0u64);
    for path in &args {
        let path = PathBuf::from(path);
        let result = match imaging::check_file(&path) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("{}: {e}", path.display());
                continue;
            }
        };
        match result {
            Ok(imaging::Checked::Dicom(m)) => {
                ok += 1;
                if !quiet {
                    println!(
                        "{}\tDICOM\t{}\t{}x{}x{}\t{}\t{}",
                        path.display(),
                        m.modality,
                        m.columns.unwrap_or(0),
                        m.rows.unwrap_or(0),
                        m.frames,
                        m.photometric_interpretation,
                        m.transfer_syntax
                    );
                }
                if let Some(dir) = &render_to {
                    let bytes = std::fs::read(&path).unwrap_or_default();
                    let t = Instant::now();
                    let r = imaging::render_png(
                        &bytes,
                        0,
                        imaging::WindowChoice::Preset(imaging::Preset::Default),
                    );
                    match r {
                        Ok(r) => {
                            let name = path
                                .file_name()
                                .map(|n| n.to_string_lossy().into_owned())
                                .unwrap_or_default();
                            let _ = std::fs::write(dir.join(format!("{name}.png")), &r.png);
                            println!("\trendered in {:?}", t.elapsed());
                        }
                        Err(e) => println!("\tnot rendered: {e}"),
                    }
                }
            }
            Ok(other) => {
                ok += 1;
                if !quiet {
                    println!("{}\t{other:?}", path.display());
                }
            }
            Err(e) => {
                refused += 1;
                if !quiet {
                    println!("{}\tREFUSED\t{}\t{e}", path.display(), e.code());
                }
            }
        }
    }
    eprintln!(
        "{ok} accepted, {refused} refused in {:.3} s",
        start.elapsed().as_secs_f64()
    );
}
