import { Dialog, showDialog } from '@jupyterlab/apputils';
import { Button, deleteIcon, HTMLSelect, refreshIcon } from '@jupyterlab/ui-components';
import React, { useState } from 'react';

import { DataLakeModel } from '../model';
import { IRule } from '../../tokens';
import { Badge, Empty, ErrorBanner, lifetimeChoices, StatusLine } from './common';

function when(iso: string | null): string {
  if (!iso) {
    return 'never';
  }
  const d = new Date(iso);
  return isNaN(d.getTime()) ? iso : d.toLocaleString();
}

function RuleRow(props: { rule: IRule; model: DataLakeModel }): JSX.Element {
  const { rule, model } = props;
  const [days, setDays] = useState(model.config?.default_lifetime_days ?? 7);
  const may = model.rulePermissions;
  const { ok, replicating, stuck } = rule.locks;
  const total = ok + replicating + stuck;
  const pct =
    rule.progress !== null && rule.progress !== undefined
      ? Math.round(rule.progress * (rule.progress <= 1 ? 100 : 1))
      : total > 0
        ? Math.round((100 * ok) / total)
        : 0;
  return (
    <li className="itw-dl-rule" data-testid="itw-dl-rule" data-rule-id={rule.id} data-state={rule.state}>
      <div className="itw-dl-rule-head">
        <button
          className="itw-dl-link"
          title="Open this DID"
          onClick={() => {
            const i = rule.did.indexOf(':');
            model.setView('explore');
            void model.openDid(rule.did.slice(0, i), rule.did.slice(i + 1));
          }}
        >
          {rule.did}
        </button>
        <Badge label={rule.rse_expression} state={rule.state} />
      </div>
      <div className="itw-dl-bar" title={`${ok} OK, ${replicating} replicating, ${stuck} stuck`}>
        <div className="itw-dl-bar-fill" style={{ width: `${pct}%` }} />
      </div>
      <div className="itw-dl-rule-facts">
        {ok} OK · {replicating} replicating · {stuck} stuck · expires {when(rule.expires_at)}
      </div>
      {rule.error && <div className="itw-dl-rule-error">{rule.error}</div>}
      <div className="itw-dl-rule-actions">
        {/* hidden when the site's Rucio does not allow them (the reason is above the list) */}
        {may.extend !== false && (
          <>
            <HTMLSelect
              aria-label="New lifetime"
              value={String(days)}
              onChange={e => setDays(Number(e.currentTarget.value))}
              options={lifetimeChoices(model.config?.default_lifetime_days ?? 7, model.config?.max_lifetime_days).map(d => ({
                value: String(d),
                label: `${d} day${d === 1 ? '' : 's'}`
              }))}
            />
            <Button small minimal data-testid="itw-dl-extend" onClick={() => void model.extendRule(rule.id, days)}>
              Extend
            </Button>
          </>
        )}
        {may.delete !== false && (
          <Button
            small
            minimal
            data-testid="itw-dl-delete"
            title="Delete this rule (Rucio may then remove the replica)"
            onClick={async () => {
              const res = await showDialog({
                title: 'Delete the replication rule?',
                body: `${rule.did} at ${rule.rse_expression}: Rucio may remove the replica once no rule keeps it.`,
                buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: 'Delete' })]
              });
              if (res.button.accept) {
                await model.deleteRule(rule.id);
              }
            }}
          >
            <deleteIcon.react tag="span" elementPosition="left" />
            Delete
          </Button>
        )}
      </div>
    </li>
  );
}

/** "My replicas": the user's rules with state, locks, expiry; extend or delete. */
export function RulesView(props: { model: DataLakeModel }): JSX.Element {
  const { model } = props;
  const { rules, rulesStatus } = model;
  return (
    <section className="itw-dl-rules" data-testid="itw-dl-rules">
      <header className="itw-dl-section-head">
        <span>My replication rules</span>
        <Button small minimal title="Reload" onClick={() => void model.loadRules()}>
          <refreshIcon.react tag="span" />
        </Button>
      </header>
      {model.actionStatus.kind === 'error' && (
        <ErrorBanner
          message={model.actionStatus.message}
          testid="itw-dl-action-error"
          onRetry={model.canRetryAction ? () => void model.retryAction() : undefined}
        />
      )}
      {model.rulePermissions.reason && (
        <div className="itw-dl-muted" data-testid="itw-dl-rule-permissions">
          {model.rulePermissions.reason}
        </div>
      )}
      {rulesStatus.kind === 'error' || (rulesStatus.kind === 'loading' && !rules) ? (
        <StatusLine status={rulesStatus} loading="Asking Rucio for your rules…" onRetry={() => void model.loadRules()} />
      ) : rules && rules.length === 0 ? (
        <Empty testid="itw-dl-no-rules">
          You have no replication rules. Open a dataset in Explore and make it available here.
        </Empty>
      ) : (
        <ul className="itw-dl-rule-list">
          {(rules ?? []).map(r => (
            <RuleRow key={r.id} rule={r} model={model} />
          ))}
        </ul>
      )}
    </section>
  );
}
