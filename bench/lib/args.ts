// The benchmarks' command-line options: --flag, --name VALUE, --name NUMBER (with a fallback).

export function benchArgs(argv: string[] = process.argv.slice(2)) {
  const flag = (name: string) => argv.includes(name);
  const stringOption = (name: string) => {
    const i = argv.indexOf(name);
    return i === -1 ? undefined : argv[i + 1];
  };
  const numberOption = (name: string, fallback: number, min = Number.MIN_VALUE) => {
    const v = Number(stringOption(name));
    return Number.isFinite(v) && v >= min ? v : fallback;
  };
  return { flag, stringOption, numberOption };
}
