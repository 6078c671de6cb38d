//! The Windows Update Agent API over COM: the only unsafe code in Patchward (invariant 6).
//! Every call is a method of a COM interface the windows crate declares `unsafe`; each is
//! used as Microsoft documents it (`IUpdateSession`, `IUpdateSearcher`, `IUpdateDownloader`,
//! `IUpdateInstaller`), with the results checked.
#![allow(unsafe_code)]

use patchward_proto::agent::{UpdateOutcome, UpdateRef};
use windows::Win32::System::Com::{
    CLSCTX_INPROC_SERVER, COINIT_MULTITHREADED, CoCreateInstance, CoInitializeEx,
};
use windows::Win32::System::UpdateAgent::{
    IUpdate, IUpdateCollection, IUpdateSession, UpdateCollection, UpdateSession,
};
use windows::core::BSTR;

fn err(what: &str, e: windows::core::Error) -> String {
    format!("0x{:08X} ({what}: {})", e.code().0 as u32, e.message())
}

/// COM for this process (multithreaded apartment), once.
pub fn init() -> Result<(), String> {
    // SAFETY: called before any other COM use; S_FALSE (already initialised) is fine.
    let hr = unsafe { CoInitializeEx(None, COINIT_MULTITHREADED) };
    if hr.is_err() {
        return Err(format!("cannot initialise COM: 0x{:08X}", hr.0 as u32));
    }
    Ok(())
}

fn session() -> Result<IUpdateSession, String> {
    // SAFETY: UpdateSession is the documented CLSID of the Windows Update Agent's session.
    unsafe { CoCreateInstance(&UpdateSession, None, CLSCTX_INPROC_SERVER) }
        .map_err(|e| err("UpdateSession", e))
}

/// The updates a search finds.
fn search(s: &IUpdateSession, criteria: &str) -> Result<Vec<IUpdate>, String> {
    // SAFETY: plain COM calls on live interfaces; indexes stay below Count.
    unsafe {
        let searcher = s
            .CreateUpdateSearcher()
            .map_err(|e| err("CreateUpdateSearcher", e))?;
        let result = searcher
            .Search(&BSTR::from(criteria))
            .map_err(|e| err("Search", e))?;
        let updates = result.Updates().map_err(|e| err("Updates", e))?;
        let n = updates.Count().map_err(|e| err("Count", e))?;
        let mut out = Vec::with_capacity(n.max(0) as usize);
        for i in 0..n {
            out.push(updates.get_Item(i).map_err(|e| err("Item", e))?);
        }
        Ok(out)
    }
}

fn kbs_of(u: &IUpdate) -> Vec<String> {
    // SAFETY: as above.
    unsafe {
        let Ok(ids) = u.KBArticleIDs() else {
            return Vec::new();
        };
        let n = ids.Count().unwrap_or(0);
        (0..n)
            .filter_map(|i| ids.get_Item(i).ok())
            .map(|b| format!("KB{b}"))
            .collect()
    }
}

/// KBs of the updates the Windows Update Agent reports installed.
pub fn installed_kbs() -> Result<Vec<String>, String> {
    let s = session()?;
    Ok(search(&s, "IsInstalled=1 and Type='Software'")?
        .iter()
        .flat_map(kbs_of)
        .collect())
}

/// An update's UpdateID, revision and title.
fn identity(u: &IUpdate) -> Result<(String, u32, String), String> {
    // SAFETY: as above.
    unsafe {
        let id = u.Identity().map_err(|e| err("Identity", e))?;
        let update_id = id.UpdateID().map_err(|e| err("UpdateID", e))?.to_string();
        let revision = id.RevisionNumber().map_err(|e| err("RevisionNumber", e))?;
        let title = u.Title().map(|t| t.to_string()).unwrap_or_default();
        Ok((
            update_id.to_ascii_lowercase(),
            u32::try_from(revision).unwrap_or(0),
            title,
        ))
    }
}

/// The updates Windows Update offers this host for these KBs, by identity.
pub fn scan(kbs: &[String]) -> Result<Vec<UpdateRef>, String> {
    let s = session()?;
    let mut out = Vec::new();
    for u in search(&s, "IsInstalled=0 and Type='Software'")? {
        let ks = kbs_of(&u);
        if let Some(k) = kbs
            .iter()
            .find(|k| ks.iter().any(|x| x.eq_ignore_ascii_case(k)))
        {
            let (update_id, revision, title) = identity(&u)?;
            out.push(UpdateRef {
                kb: k.clone(),
                update_id,
                revision,
                title,
            });
        }
    }
    Ok(out)
}

/// Download and install the updates of these KBs; one outcome per KB. With `found` (what the
/// job's scan found), exactly those UpdateIDs and revisions are searched for; otherwise the
/// KBs are matched among the updates offered.
pub fn install(kbs: &[String], found: &[UpdateRef]) -> Result<Vec<UpdateOutcome>, String> {
    let s = session()?;
    let wanted: Vec<(String, IUpdate)> = if found.is_empty() {
        search(&s, "IsInstalled=0 and Type='Software'")?
            .into_iter()
            .filter_map(|u| {
                let ks = kbs_of(&u);
                kbs.iter()
                    .find(|k| ks.iter().any(|x| x.eq_ignore_ascii_case(k)))
                    .map(|k| (k.clone(), u))
            })
            .collect()
    } else {
        // Only GUIDs and numbers reach the search criteria.
        let criteria: Vec<String> = found
            .iter()
            .filter(|f| patchward_proto::agent::is_guid(&f.update_id))
            .map(|f| {
                format!(
                    "(UpdateID='{}' and RevisionNumber={})",
                    f.update_id, f.revision
                )
            })
            .collect();
        if criteria.is_empty() {
            Vec::new()
        } else {
            search(&s, &criteria.join(" or "))?
                .into_iter()
                .filter_map(|u| {
                    let (id, rev, _) = identity(&u).ok()?;
                    found
                        .iter()
                        .find(|f| f.update_id.eq_ignore_ascii_case(&id) && f.revision == rev)
                        .map(|f| (f.kb.clone(), u))
                })
                .collect()
        }
    };
    let mut out: Vec<UpdateOutcome> = kbs
        .iter()
        .filter(|k| !wanted.iter().any(|(w, _)| w == *k))
        .map(|k| UpdateOutcome {
            kb: k.clone(),
            installed: false,
            hresult: Some(if found.iter().any(|f| f.kb == *k) {
                // WU_E_NO_UPDATE: the update the scan found is gone (re-released, expired).
                "0x80240024".into()
            } else {
                // WU_E_NOT_APPLICABLE: Windows Update does not offer it to this host.
                "0x80240017".into()
            }),
        })
        .collect();
    if wanted.is_empty() {
        return Ok(out);
    }
    // SAFETY: COM calls on live interfaces, as documented for IUpdateDownloader and
    // IUpdateInstaller; indexes stay below the collection's count.
    unsafe {
        let coll: IUpdateCollection =
            CoCreateInstance(&UpdateCollection, None, CLSCTX_INPROC_SERVER)
                .map_err(|e| err("UpdateCollection", e))?;
        for (_, u) in &wanted {
            if !u.EulaAccepted().map(|b| b.as_bool()).unwrap_or(true) {
                u.AcceptEula().map_err(|e| err("AcceptEula", e))?;
            }
            coll.Add(u).map_err(|e| err("Add", e))?;
        }
        let downloader = s
            .CreateUpdateDownloader()
            .map_err(|e| err("CreateUpdateDownloader", e))?;
        downloader
            .SetUpdates(&coll)
            .map_err(|e| err("SetUpdates", e))?;
        downloader.Download().map_err(|e| err("Download", e))?;
        let installer = s
            .CreateUpdateInstaller()
            .map_err(|e| err("CreateUpdateInstaller", e))?;
        installer
            .SetUpdates(&coll)
            .map_err(|e| err("SetUpdates", e))?;
        let result = installer.Install().map_err(|e| err("Install", e))?;
        for (i, (kb, _)) in wanted.iter().enumerate() {
            let r = result
                .GetUpdateResult(i as i32)
                .map_err(|e| err("GetUpdateResult", e))?;
            let hr = r.HResult().unwrap_or(0);
            // OperationResultCode: 2 succeeded, 3 succeeded with errors.
            let code = r.ResultCode().map(|c| c.0).unwrap_or(4);
            let ok = code == 2 || code == 3;
            out.push(UpdateOutcome {
                kb: kb.clone(),
                installed: ok,
                hresult: (!ok).then(|| format!("0x{:08X}", hr as u32)),
            });
        }
    }
    Ok(out)
}
