import { defineConfig } from 'vite';
import { svelte } from '@sveltejs/vite-plugin-svelte';
import { resolve } from 'node:path';

// Builds the app behind Tauri's mockIPC for the headless page tests (dist-harness/).
export default defineConfig({
  root: resolve(__dirname),
  plugins: [svelte({ configFile: resolve(__dirname, '../../svelte.config.js') })],
  base: './',
  build: { target: 'es2022', outDir: resolve(__dirname, '../../../test-output/ui-harness'), emptyOutDir: true,
    rollupOptions: { input: resolve(__dirname, 'harness.html') } },
});
