import './base.css';
import './datalake.css';
