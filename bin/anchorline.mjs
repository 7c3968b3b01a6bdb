#!/usr/bin/env node
// Runs the TypeScript CLI through tsx's loader, so the command works from a plain install without a build step.
import { register } from 'tsx/esm/api';

register();
await import('../cli/main.ts');
