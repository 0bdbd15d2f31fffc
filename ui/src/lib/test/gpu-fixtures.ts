// GPU reports shaped like the backend's (core's snapshot + free ranking), for picker tests.
import type { Gpu } from '../bindings/Gpu';
import type { GpuChoice } from '../bindings/GpuChoice';
import type { GpuProcess } from '../bindings/GpuProcess';
import type { GpuReport } from '../bindings/GpuReport';

export function gpu(index: number, used: number, util: number): Gpu {
  return {
    index,
    uuid: `GPU-${index}`,
    name: 'NVIDIA H100 80GB HBM3',
    memoryTotalMib: 81559,
    memoryUsedMib: used,
    memoryFreeMib: 81559 - used,
    utilizationGpu: util,
    utilizationMemory: 0,
    temperatureC: 40 + index,
    powerDrawW: 120.5,
    powerLimitW: 700,
    migEnabled: false,
    pciBusId: `00000000:00:0${6 + index}.0`,
    computeMode: 'Default',
    mig: [],
    problem: null,
  };
}

export function proc(gpuIndex: number, pid: number, user: string, own = false): GpuProcess {
  return { gpuUuid: `GPU-${gpuIndex}`, pid, user, command: 'python3', usedMemoryMib: 8192, runningSecs: 60, own };
}

function choiceOf(g: Gpu, procs: GpuProcess[]): GpuChoice {
  const busy = procs.filter((p) => p.gpuUuid === g.uuid).length;
  const users = procs.filter((p) => p.gpuUuid === g.uuid).map((p) => p.user ?? 'an unknown user');
  const usable = g.problem === null;
  const free = usable && busy === 0;
  return {
    cudaVisibleDevices: g.uuid,
    gpuIndex: g.index,
    gpuUuid: g.uuid,
    mig: null,
    name: g.name,
    free,
    why: !usable
      ? (g.problem ?? '')
      : free
        ? `free: ${g.utilizationGpu ?? 0} % utilization, no processes`
        : `in use by ${[...new Set(users)].join(', ')}`,
    usable,
    busyProcesses: busy,
    memoryUsedMib: g.memoryUsedMib,
    memoryTotalMib: g.memoryTotalMib,
    memoryFreeMib: g.memoryFreeMib,
    utilizationGpu: g.utilizationGpu,
  };
}

/** A report as the backend ranks it: free first, then most free memory; best free recommended. */
export function report(gpus: Gpu[], processes: GpuProcess[] = []): GpuReport {
  const choices = gpus
    .map((g) => choiceOf(g, processes))
    .sort((a, b) => Number(b.free) - Number(a.free) || (b.memoryFreeMib ?? 0) - (a.memoryFreeMib ?? 0));
  return {
    snapshot: { host: 'tbtest@gpu-box', gpus, processes, noGpuReason: null, currentUser: 'tbtest', unreadable: [], warnings: [] },
    choices,
    recommended: choices[0]?.free ? choices[0].cudaVisibleDevices : null,
  };
}

/** A host without NVIDIA GPUs: a valid report, not an error. */
export function noGpuReport(reason = 'no NVIDIA GPU found on tbtest@gpu-box'): GpuReport {
  return {
    snapshot: { host: 'tbtest@gpu-box', gpus: [], processes: [], noGpuReason: reason, currentUser: 'tbtest', unreadable: [], warnings: [] },
    choices: [],
    recommended: null,
  };
}
