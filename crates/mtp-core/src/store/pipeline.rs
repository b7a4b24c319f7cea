//! What the pipeline's drivers store besides items and remote ids: the page a job's result
//! can be seen at.

use super::{Store, StoreError};

impl Store {
    /// Sets the address where the user can see what a job published (a Mapillary image,
    /// a KartaView sequence, a Panoramax collection).
    pub async fn set_job_remote_url(
        &self,
        job_id: i64,
        url: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE jobs SET remote_url = ?, updated_at = ? WHERE id = ?")
            .bind(url)
            .bind(now)
            .bind(job_id)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}
