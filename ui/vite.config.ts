import { defineConfig } from 'vite';
import { svelte } from '@sveltejs/vite-plugin-svelte';

export default defineConfig({
  plugins: [svelte()],
  // Tauri serves the files itself; relative paths keep `dist/` portable.
  base: './',
  clearScreen: false,
  build: { target: 'es2021', outDir: 'dist', emptyOutDir: true, sourcemap: false },
  test: { include: ['tests/unit/**/*.test.ts'], environment: 'node' },
});
