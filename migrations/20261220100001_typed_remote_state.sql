-- Each destination's remote state is one typed struct now (crates/mtp-app/src/remote.rs).
-- Two earlier layouts change shape; every other key keeps its name and value.

-- Mapillary: the per-chunk parallel lists (manifest_keys, manifest_handles, handles_at and
-- finish_sent_at with their times as text, cluster_ids, sequence_keys) become one list of
-- chunk objects, `chunks`.
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 100000)
UPDATE jobs SET remote_json = json_set(
    json_remove(remote_json, '$.manifest_keys', '$.manifest_handles', '$.handles_at',
        '$.finish_sent_at', '$.cluster_ids', '$.sequence_keys'),
    '$.chunks',
    (SELECT json_group_array(json(chunk)) FROM (
        SELECT json_object(
            'manifest_key', json_extract(jobs.remote_json, '$.manifest_keys[' || i || ']'),
            'manifest_handle', json_extract(jobs.remote_json, '$.manifest_handles[' || i || ']'),
            'handles_at', CAST(json_extract(jobs.remote_json, '$.handles_at[' || i || ']') AS INTEGER),
            'finish_sent_at', CAST(json_extract(jobs.remote_json, '$.finish_sent_at[' || i || ']') AS INTEGER),
            'cluster_id', json_extract(jobs.remote_json, '$.cluster_ids[' || i || ']'),
            'sequence_key', json_extract(jobs.remote_json, '$.sequence_keys[' || i || ']')
        ) AS chunk
        FROM n
        WHERE i < max(
            coalesce(json_array_length(jobs.remote_json, '$.manifest_keys'), 0),
            coalesce(json_array_length(jobs.remote_json, '$.manifest_handles'), 0),
            coalesce(json_array_length(jobs.remote_json, '$.handles_at'), 0),
            coalesce(json_array_length(jobs.remote_json, '$.finish_sent_at'), 0),
            coalesce(json_array_length(jobs.remote_json, '$.cluster_ids'), 0),
            coalesce(json_array_length(jobs.remote_json, '$.sequence_keys'), 0))
        ORDER BY i))
)
WHERE destination = 'mapillary'
  AND json_valid(remote_json)
  AND (json_type(remote_json, '$.manifest_keys') IS NOT NULL
    OR json_type(remote_json, '$.manifest_handles') IS NOT NULL
    OR json_type(remote_json, '$.handles_at') IS NOT NULL
    OR json_type(remote_json, '$.finish_sent_at') IS NOT NULL
    OR json_type(remote_json, '$.cluster_ids') IS NOT NULL
    OR json_type(remote_json, '$.sequence_keys') IS NOT NULL);

-- Map the Paths Web: the "Part N" sequences, kept as `part:<Mapillary key>` (its unique id)
-- and `part_linked:<Mapillary key>` (true once linked), become one map, `parts`.
UPDATE jobs SET remote_json = json_set(
    (SELECT json_group_object(e.key, CASE e.type
            WHEN 'true' THEN json('true')
            WHEN 'false' THEN json('false')
            WHEN 'object' THEN json(e.value)
            WHEN 'array' THEN json(e.value)
            ELSE e.value END)
        FROM json_each(jobs.remote_json) AS e
        WHERE e.key NOT LIKE 'part:%' AND e.key NOT LIKE 'part!_linked:%' ESCAPE '!'),
    '$.parts',
    (SELECT json_group_object(k.key, json_object(
            'unique_id', json_extract(jobs.remote_json, '$."part:' || k.key || '"'),
            'linked', json(CASE WHEN json_extract(jobs.remote_json, '$."part_linked:' || k.key || '"')
                THEN 'true' ELSE 'false' END)))
        FROM (SELECT DISTINCT substr(e.key, instr(e.key, ':') + 1) AS key
              FROM json_each(jobs.remote_json) AS e
              WHERE e.key LIKE 'part:%' OR e.key LIKE 'part!_linked:%' ESCAPE '!') AS k)
)
WHERE destination = 'mtpw'
  AND json_valid(remote_json)
  AND EXISTS (SELECT 1 FROM json_each(jobs.remote_json) AS e
              WHERE e.key LIKE 'part:%' OR e.key LIKE 'part!_linked:%' ESCAPE '!');
