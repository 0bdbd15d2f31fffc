export type JobLeftRunning = { host: string, jobId: string, endTime: string | null, };
