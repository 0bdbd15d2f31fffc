import type { EnvironmentView } from '../bindings/EnvironmentView';

export const env = (name: string, extra: Partial<EnvironmentView> = {}): EnvironmentView => ({
  kind: 'venv',
  name,
  path: `/home/u/${name}`,
  pythonVersion: '3.11.2',
  jupyterLab: true,
  notebook: false,
  problem: null,
  configured: false,
  ...extra,
});
