import './base.css';
import './datalake.css';
import './jobs.css';
import './usage.css';
