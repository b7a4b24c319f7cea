-- Map the Paths Web's sequence page is `/sequence/<unique_id>/detail` (mtp-web's
-- sequence/urls.py); the bare `/sequence/<unique_id>` the app linked to before is a 404.
-- Links saved on jobs by earlier versions move to the page.
UPDATE jobs
   SET remote_url = remote_url || '/detail'
 WHERE destination = 'mtpw'
   AND remote_url LIKE '%/sequence/%'
   AND remote_url NOT LIKE '%/detail';
