import { defineConfig } from "vite";

// Built into ui/dist, which the Tauri shell embeds. No dev server: `make run` builds.
export default defineConfig({
  clearScreen: false,
  build: {
    outDir: "dist",
    emptyOutDir: true,
    target: "safari15",
    sourcemap: false,
  },
});
