export { MllpFramer, encodeMllpFrame, type FramerOptions, type FramerEvent } from './framer.ts';
