import type { JobLeftRunning } from "./JobLeftRunning";
export type QuitQuestion = { slurmJobs: Array<JobLeftRunning>, };
