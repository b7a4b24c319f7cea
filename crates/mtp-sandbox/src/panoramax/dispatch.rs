//! What GeoVisio does when a set completes: sort, deduplicate and split its pictures into
//! collections; and the file tracking that completes (or reopens) a set.

use time::OffsetDateTime;

use crate::clock;
use crate::geo;

use super::state::{Collection, PnxState, Rejection, SetFile};

/// Sorts, deduplicates and splits the accepted pictures into collections (GeoVisio's
/// `dispatch` job), run when the set completes.
fn dispatch(st: &mut PnxState, set_idx: usize) {
    let set_id = st.sets[set_idx].id.clone();
    // Undo a previous dispatch (the set was reopened).
    let old: Vec<String> = std::mem::take(&mut st.sets[set_idx].collection_ids);
    st.collections.retain(|c| !old.contains(&c.id));
    for f in &mut st.sets[set_idx].files {
        if f.rejected
            .as_ref()
            .is_some_and(|r| r.reason == "capture_duplicate")
        {
            f.rejected = None;
        }
    }
    let set = &st.sets[set_idx];
    let mut pics: Vec<usize> = st
        .pictures
        .iter()
        .enumerate()
        // Broken pictures too: GeoVisio 2.15.1's dispatch takes every picture of the set.
        .filter(|(_, p)| p.set_id == set_id)
        .map(|(i, _)| i)
        .collect();
    let key_time = |i: &usize| {
        (
            st.pictures[*i].meta.captured_at,
            st.pictures[*i].file_name.clone(),
        )
    };
    match set.sort_method.as_str() {
        "filename-asc" => pics.sort_by_key(|i| st.pictures[*i].file_name.clone()),
        "filename-desc" => {
            pics.sort_by_key(|i| std::cmp::Reverse(st.pictures[*i].file_name.clone()))
        }
        "time-desc" => pics.sort_by_key(|i| std::cmp::Reverse(key_time(i))),
        _ => pics.sort_by_key(key_time),
    }
    let mut duplicates = Vec::new();
    let mut kept: Vec<usize> = Vec::new();
    for i in pics {
        if !set.no_deduplication
            && let Some(&last) = kept.last()
        {
            let (a, b) = (&st.pictures[last].meta, &st.pictures[i].meta);
            if let (Some(pa), Some(pb)) = (a.position(), b.position()) {
                let close = geo::distance_m(pa, pb) <= set.duplicate_distance;
                let same_way = match (a.heading, b.heading) {
                    (Some(ha), Some(hb)) => geo::angle_diff(ha, hb) <= set.duplicate_rotation,
                    _ => true,
                };
                if close && same_way {
                    duplicates.push(i);
                    continue;
                }
            }
        }
        kept.push(i);
    }
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for i in kept {
        let split = match groups.last().and_then(|g| g.last()) {
            None => true,
            Some(&prev) if !set.no_split => {
                let (a, b) = (&st.pictures[prev].meta, &st.pictures[i].meta);
                let far = match (a.position(), b.position()) {
                    (Some(pa), Some(pb)) => geo::distance_m(pa, pb) > set.split_distance,
                    _ => false,
                };
                let late = match (a.captured_at, b.captured_at) {
                    (Some(ta), Some(tb)) => (tb - ta).abs().as_seconds_f64() > set.split_time,
                    _ => false,
                };
                far || late
            }
            Some(_) => false,
        };
        if split {
            groups.push(vec![i]);
        } else if let Some(g) = groups.last_mut() {
            g.push(i);
        }
    }
    let title = set.title.clone();
    let user = set.user;
    let mut ids = Vec::new();
    for g in groups {
        let id = uuid::Uuid::new_v4().to_string();
        for &i in &g {
            st.pictures[i].collection_id = Some(id.clone());
        }
        st.collections.push(Collection {
            id: id.clone(),
            set_id: set_id.clone(),
            user,
            title: title.clone(),
            picture_ids: g.iter().map(|&i| st.pictures[i].id.clone()).collect(),
            created_at: OffsetDateTime::now_utc(),
            visibility: None,
            deleted: false,
        });
        ids.push(id);
    }
    for i in duplicates {
        let pid = st.pictures[i].id.clone();
        st.pictures[i].collection_id = None;
        if let Some(f) = st.sets[set_idx]
            .files
            .iter_mut()
            .find(|f| f.picture_id.as_deref() == Some(pid.as_str()))
        {
            f.rejected = Some(Rejection {
                reason: "capture_duplicate".into(),
                severity: "info".into(),
                message: "The picture is too similar to another one (nearly at the same position and heading)".into(),
            });
        }
    }
    st.sets[set_idx].collection_ids = ids;
}

pub(super) fn mark_complete(st: &mut PnxState, set_idx: usize) {
    if st.sets[set_idx].completed_at.is_none() {
        st.sets[set_idx].completed_at = Some(clock::now_ms());
        dispatch(st, set_idx);
    }
}

/// Tracks a file (accepted or rejected) and completes the set when its files number exactly
/// the estimate (GeoVisio: `completed = (nb = estimated_nb_files)`). A file sent again under
/// the name of a rejected one replaces it, as GeoVisio's upsert on the set and the name does
/// (the caller has refused a name that already has a picture).
pub(super) fn track(st: &mut PnxState, set_idx: usize, file: SetFile) {
    let set = &mut st.sets[set_idx];
    if set.completed_at.take().is_some() {
        // A later file reopens the set.
        let old = std::mem::take(&mut set.collection_ids);
        st.collections.retain(|c| !old.contains(&c.id));
    }
    let set = &mut st.sets[set_idx];
    match set
        .files
        .iter_mut()
        .find(|f| f.file_name == file.file_name && f.picture_id.is_none())
    {
        Some(rejected) => *rejected = file,
        None => set.files.push(file),
    }
    let counted = set.files.len() as u64;
    if set
        .estimated_nb_files
        .is_some_and(|n| n > 0 && counted == n)
    {
        mark_complete(st, set_idx);
    }
}
