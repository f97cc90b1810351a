import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "unit",
          include: ["test/unit/**/*.test.ts", "test/program/**/*.test.ts"],
          setupFiles: ["test/helpers/setup.ts"],
          // Pulumi's runtime state is global to a process: one process per file.
          pool: "forks",
        },
      },
      {
        test: {
          name: "e2e",
          include: ["test/e2e/**/*.test.ts"],
          globalSetup: ["test/e2e/global-setup.ts"],
          pool: "forks",
          // One file at a time: the files share one Docker engine and the kernel's binfmt_misc (the
          // platforms test removes and re-registers emulation, which another file's arm64 build needs).
          fileParallelism: false,
          testTimeout: 20 * 60_000,
          hookTimeout: 20 * 60_000,
        },
      },
      {
        // Not part of scripts/test.sh: scripts/kill-sweep.sh runs it.
        test: {
          name: "sweep",
          include: ["test/sweep/**/*.test.ts"],
          globalSetup: ["test/e2e/global-setup.ts"],
          pool: "forks",
          testTimeout: 60 * 60_000,
          hookTimeout: 20 * 60_000,
        },
      },
    ],
  },
});
