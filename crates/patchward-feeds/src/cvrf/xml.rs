//! Streaming reader for CVRF 1.1 XML. Elements are matched by local name (prefixes vary between
//! producers); text is captured only for the fields we keep, so 340 MB of history parses in
//! seconds without building a DOM.

use super::{Builder, CvrfDocument, RawDoc, RawRemediation, RawScore, RawThreat, RawVuln};
use crate::error::ParseError;
use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

/// Which container the cursor is in; decides what a `Description` or `ProductID` means.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Ctx {
    None,
    Tracking,
    ProductTree,
    Vuln,
    Status,
    Threat,
    ScoreSet,
    Remediation,
    TagNote,
    Skip,
}

/// Which text field is being captured.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Field {
    DocTitle,
    DocId,
    RevisionNumber,
    InitialRelease,
    CurrentRelease,
    ProductName,
    VulnTitle,
    Cve,
    Cwe,
    TagNote,
    ProductId,
    Description,
    BaseScore,
    Vector,
    Supercedence,
    Restart,
    SubType,
    FixedBuild,
}

pub fn parse_xml(source: &str, bytes: &[u8]) -> Result<CvrfDocument, ParseError> {
    let text =
        std::str::from_utf8(bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)).map_err(|e| {
            ParseError::new(
                source,
                Some(line_of(bytes, e.valid_up_to())),
                None,
                &format!("not UTF-8: {e}"),
            )
        })?;
    let mut r = Reader::from_str(text);
    let cfg = r.config_mut();
    cfg.trim_text(false);
    cfg.check_end_names = true;

    let xml_err = |r: &Reader<&[u8]>, e: &dyn std::fmt::Display| {
        let pos = usize::try_from(r.error_position())
            .unwrap_or(usize::MAX)
            .min(bytes.len());
        ParseError::new(
            source,
            Some(line_of(bytes, pos)),
            None,
            &format!("malformed XML: {e}"),
        )
    };

    let mut doc = RawDoc::default();
    let mut builder: Option<Builder> = None;
    let mut ctx = Ctx::None;
    // Depth at which the current container started, so nested elements don't end it early.
    let mut ctx_stack: Vec<(Ctx, usize)> = Vec::new();
    let mut depth = 0usize;
    let mut field: Option<Field> = None;
    let mut buf = String::new();
    let mut product_id = String::new();
    let mut saw_root = false;

    let mut vuln = RawVuln::default();
    let mut threat = RawThreat::default();
    let mut score = RawScore::default();
    let mut rem = RawRemediation::default();
    let mut status_known_affected = false;

    loop {
        let ev = r.read_event().map_err(|e| xml_err(&r, &e))?;
        match ev {
            Event::Start(e) => {
                depth += 1;
                let name = local(&e);
                if depth == 1 {
                    if name != "cvrfdoc" {
                        return Err(ParseError::new(
                            source,
                            Some(1),
                            None,
                            &format!("not a CVRF document: root element <{name}>"),
                        ));
                    }
                    saw_root = true;
                    continue;
                }
                let enter = |c: Ctx, stack: &mut Vec<(Ctx, usize)>, ctx: &mut Ctx| {
                    stack.push((*ctx, depth));
                    *ctx = c;
                };
                match (ctx, name) {
                    (Ctx::Skip, _) => {}
                    (Ctx::None, "DocumentTitle") => field = Some(Field::DocTitle),
                    (Ctx::None, "DocumentTracking") => {
                        enter(Ctx::Tracking, &mut ctx_stack, &mut ctx)
                    }
                    (Ctx::None, "DocumentNotes" | "DocumentReferences" | "Acknowledgments") => {
                        doc.has_notes |= name == "DocumentNotes";
                        enter(Ctx::Skip, &mut ctx_stack, &mut ctx)
                    }
                    (Ctx::Tracking, "ID") => field = Some(Field::DocId),
                    (Ctx::Tracking, "Number") => field = Some(Field::RevisionNumber),
                    (Ctx::Tracking, "InitialReleaseDate") => field = Some(Field::InitialRelease),
                    (Ctx::Tracking, "CurrentReleaseDate") => field = Some(Field::CurrentRelease),
                    (Ctx::None, "ProductTree") => {
                        doc.has_product_tree = true;
                        enter(Ctx::ProductTree, &mut ctx_stack, &mut ctx)
                    }
                    (Ctx::ProductTree, "FullProductName") => {
                        product_id = attr(&e, "ProductID").unwrap_or_default();
                        field = Some(Field::ProductName);
                    }
                    (Ctx::None, "Vulnerability") => {
                        if builder.is_none() {
                            builder = Some(Builder::new(source, std::mem::take(&mut doc))?);
                        }
                        vuln = RawVuln::default();
                        enter(Ctx::Vuln, &mut ctx_stack, &mut ctx);
                    }
                    (Ctx::Vuln, "Title") => field = Some(Field::VulnTitle),
                    (Ctx::Vuln, "CVE") => field = Some(Field::Cve),
                    (Ctx::Vuln, "CWE") => {
                        vuln.cwe = attr(&e, "ID");
                        field = Some(Field::Cwe);
                    }
                    (Ctx::Vuln, "Note") => {
                        if attr(&e, "Type").as_deref() == Some("Tag") {
                            enter(Ctx::TagNote, &mut ctx_stack, &mut ctx);
                            field = Some(Field::TagNote);
                        } else {
                            enter(Ctx::Skip, &mut ctx_stack, &mut ctx);
                        }
                    }
                    (Ctx::Vuln, "Status") => {
                        status_known_affected =
                            attr(&e, "Type").as_deref() == Some("Known Affected");
                        enter(Ctx::Status, &mut ctx_stack, &mut ctx);
                    }
                    (Ctx::Vuln, "Threat") => {
                        threat = RawThreat {
                            kind: attr(&e, "Type").unwrap_or_default(),
                            ..Default::default()
                        };
                        enter(Ctx::Threat, &mut ctx_stack, &mut ctx);
                    }
                    (Ctx::Vuln, "ScoreSet") => {
                        score = RawScore::default();
                        enter(Ctx::ScoreSet, &mut ctx_stack, &mut ctx);
                    }
                    (Ctx::Vuln, "Remediation") => {
                        rem = RawRemediation {
                            kind: attr(&e, "Type").unwrap_or_default(),
                            ..Default::default()
                        };
                        enter(Ctx::Remediation, &mut ctx_stack, &mut ctx);
                    }
                    // Notes holds the Tag note we keep; these hold nothing we read.
                    (Ctx::Vuln, "Acknowledgments" | "RevisionHistory" | "References") => {
                        enter(Ctx::Skip, &mut ctx_stack, &mut ctx)
                    }
                    (Ctx::Status | Ctx::Threat | Ctx::ScoreSet | Ctx::Remediation, "ProductID") => {
                        field = Some(Field::ProductId)
                    }
                    (Ctx::Threat | Ctx::Remediation, "Description") => {
                        field = Some(Field::Description)
                    }
                    (Ctx::ScoreSet, "BaseScore") => field = Some(Field::BaseScore),
                    (Ctx::ScoreSet, "Vector") => field = Some(Field::Vector),
                    (Ctx::Remediation, "Supercedence") => field = Some(Field::Supercedence),
                    (Ctx::Remediation, "RestartRequired") => field = Some(Field::Restart),
                    (Ctx::Remediation, "SubType") => field = Some(Field::SubType),
                    (Ctx::Remediation, "FixedBuild") => field = Some(Field::FixedBuild),
                    _ => {}
                }
                buf.clear();
            }
            Event::Text(t) => {
                if field.is_some() {
                    buf.push_str(&t);
                }
            }
            Event::CData(t) => {
                if field.is_some() {
                    buf.push_str(&t);
                }
            }
            Event::GeneralRef(g) => {
                if field.is_some() {
                    match g.resolve_char_ref() {
                        Ok(Some(c)) => buf.push(c),
                        Ok(None) => match &*g {
                            "lt" => buf.push('<'),
                            "gt" => buf.push('>'),
                            "amp" => buf.push('&'),
                            "quot" => buf.push('"'),
                            "apos" => buf.push('\''),
                            other => {
                                return Err(ParseError::new(
                                    source,
                                    Some(line_of(
                                        bytes,
                                        usize::try_from(r.buffer_position()).unwrap_or(0),
                                    )),
                                    None,
                                    &format!("unknown entity &{other};"),
                                ));
                            }
                        },
                        Err(e) => return Err(xml_err(&r, &e)),
                    }
                }
            }
            Event::End(e) => {
                if let Some(f) = field.take() {
                    let v = std::mem::take(&mut buf);
                    store(
                        f,
                        v,
                        &mut doc,
                        &mut vuln,
                        &mut threat,
                        &mut score,
                        &mut rem,
                        &product_id,
                        ctx,
                        status_known_affected,
                    );
                }
                if let Some(&(prev, d)) = ctx_stack.last()
                    && d == depth
                {
                    ctx_stack.pop();
                    let closing = ctx;
                    ctx = prev;
                    match closing {
                        Ctx::Threat => vuln.threats.push(std::mem::take(&mut threat)),
                        Ctx::ScoreSet => vuln.scores.push(std::mem::take(&mut score)),
                        Ctx::Remediation => vuln.remediations.push(std::mem::take(&mut rem)),
                        Ctx::Vuln => {
                            if let Some(b) = builder.as_mut() {
                                b.push(std::mem::take(&mut vuln))?;
                            }
                        }
                        _ => {}
                    }
                }
                let _ = e;
                depth = depth.saturating_sub(1);
            }
            Event::Empty(_)
            | Event::Comment(_)
            | Event::Decl(_)
            | Event::PI(_)
            | Event::DocType(_) => {}
            Event::Eof => break,
        }
    }
    if !saw_root {
        return Err(ParseError::new(
            source,
            Some(1),
            None,
            "empty document: no <cvrfdoc> element",
        ));
    }
    if depth != 0 {
        return Err(ParseError::new(
            source,
            Some(line_of(bytes, bytes.len())),
            None,
            &format!("truncated document: {depth} element(s) not closed at end of input"),
        ));
    }
    let builder = match builder {
        Some(b) => b,
        None => Builder::new(source, doc)?,
    };
    builder.finish()
}

#[allow(clippy::too_many_arguments)]
fn store(
    f: Field,
    v: String,
    doc: &mut RawDoc,
    vuln: &mut RawVuln,
    threat: &mut RawThreat,
    score: &mut RawScore,
    rem: &mut RawRemediation,
    product_id: &str,
    ctx: Ctx,
    known_affected: bool,
) {
    match f {
        Field::DocTitle => doc.title = v,
        Field::DocId => doc.id = v.trim().to_string(),
        Field::RevisionNumber => doc.revision = Some(v.trim().to_string()),
        Field::InitialRelease => doc.initial_release = Some(v),
        Field::CurrentRelease => doc.current_release = Some(v),
        Field::ProductName => doc.products.push((product_id.trim().to_string(), v)),
        Field::VulnTitle => vuln.title = v,
        Field::Cve => vuln.cve = v.trim().to_string(),
        Field::Cwe => {
            if vuln.cwe.is_none() {
                vuln.cwe = Some(v.trim().to_string());
            }
        }
        Field::TagNote => vuln.tag = Some(v),
        Field::ProductId => {
            let id = v.trim().to_string();
            match ctx {
                Ctx::Status if known_affected => vuln.known_affected.push(id),
                Ctx::Threat => threat.product_ids.push(id),
                Ctx::ScoreSet => score.product_ids.push(id),
                Ctx::Remediation => rem.product_ids.push(id),
                _ => {}
            }
        }
        Field::Description => match ctx {
            Ctx::Threat => threat.description = v,
            Ctx::Remediation => rem.description = v.trim().to_string(),
            _ => {}
        },
        Field::BaseScore => score.base = v.trim().parse().ok(),
        Field::Vector => score.vector = Some(v),
        Field::Supercedence => rem.supercedence = v,
        Field::Restart => rem.restart = Some(v),
        Field::SubType => rem.subtype = v,
        Field::FixedBuild => rem.fixed_build = v,
    }
}

fn local<'a>(e: &'a BytesStart<'_>) -> &'a str {
    let n: &str = e.name().0;
    n.rsplit(':').next().unwrap_or(n)
}

fn attr(e: &BytesStart<'_>, key: &str) -> Option<String> {
    e.attributes()
        .flatten()
        .find(|a| {
            let k = a.key.0;
            k.rsplit(':').next().unwrap_or(k) == key
        })
        .and_then(|a| {
            a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .ok()
                .map(|v| v.into_owned())
        })
}

/// 1-based line number of a byte offset (computed only on errors).
pub(crate) fn line_of(bytes: &[u8], pos: usize) -> u64 {
    let end = pos.min(bytes.len());
    1 + bytes[..end].iter().filter(|b| **b == b'\n').count() as u64
}
