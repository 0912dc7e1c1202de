/** 1536 -> "1.5 KiB": binary units, as registries and kubectl report sizes. */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(value < 10 ? 2 : 1)} ${units[unit]}`;
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const minutes = Math.floor(ms / 60_000);
  return `${minutes} min ${Math.round((ms % 60_000) / 1000)} s`;
}

/** sha256:0123456789ab… -> sha256:0123456789ab (enough to recognise, never cut mid-algorithm). */
export function shortDigest(digest: string): string {
  const colon = digest.indexOf(':');
  return digest.slice(0, colon + 13);
}

/** The width tables fit on a terminal; undefined when the stream is not one (CI logs: one row per line). */
export function tableWidth(stream: NodeJS.WriteStream): number | undefined {
  return stream.isTTY && stream.columns ? Math.max(40, stream.columns) : undefined;
}
