/** The patient portal: entry point. It looks like the console (its stylesheet) with a few rules of its own. */
import { render } from 'preact';
import { Portal } from './app.tsx';
import '../src/styles.css';
import './portal.css';

render(<Portal />, document.getElementById('app')!);
