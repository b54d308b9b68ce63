//! The `JobQueue` port: queued work (sends, discovery) with retries and a dead-letter queue.
