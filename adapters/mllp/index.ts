export { MllpFramer, encodeMllpFrame, type FramerOptions, type FramerEvent } from './framer.ts';
export { MllpServer, type MllpServerOptions } from './server.ts';
