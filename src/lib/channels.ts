/** LISTEN/NOTIFY channel names shared by the processes on one PostgreSQL. */

/** Notified when recipients become due now (a message accepted, a cancel undone); wakes delivery workers. */
export const QUEUE_CHANNEL = "postline_queue";

/** Notified after events were written (outcomes, bounces, complaints, unsubscribes); wakes webhook dispatchers. */
export const WEBHOOK_CHANNEL = "postline_webhooks";
