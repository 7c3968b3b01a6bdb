/**
 * The web console: a Preact app in web/src, bundled by esbuild into static files that api/console.ts serves at
 * /console/, and the patient portal in web/portal, served by api/portal.ts at /portal/. This module is the Node side: building it.
 */
export { CONSOLE_DIST_DIR, PORTAL_DIST_DIR, buildConsole, consoleBuildIsCurrent, type ConsoleBuildOptions } from './build.ts';
